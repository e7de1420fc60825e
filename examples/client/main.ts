// The client: connect, send, read replies, and tell a refused handshake from a lost connection.
//
//   npx tsx examples/client/main.ts URL [message...]
import { connect, WebSocketError } from 'humphrey-ws';

const [url = 'ws://127.0.0.1:9001', ...messages] = process.argv.slice(2);

try {
  const stream = await connect(url, { headers: { 'User-Agent': 'guide-example' }, protocols: 'chat' });
  for (const text of messages) {
    await stream.send(text);
    console.log(`reply: ${(await stream.recv()).text()}`);
  }
  const { code } = await stream.close();
  console.log(`closed ${code}`);
} catch (error) {
  if (error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE' && error.status !== undefined) {
    // The server refused: its status, headers and body say why.
    console.log(`refused with ${error.status}: ${error.body}`);
  } else {
    console.log(`failed: ${(error as Error).message}`);
  }
  process.exitCode = 1;
}
