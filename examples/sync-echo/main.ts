// Chapter 1 of the guide, per-connection ("synchronous") architecture: a server that greets
// each client, then echoes every message back, logging connects, messages and disconnects.
//
//   npx tsx examples/sync-echo/main.ts [address]     (default 127.0.0.1:9001)
import { App, Message, websocketHandler, type WebSocketStream } from 'humphrey-ws';

async function echo(stream: WebSocketStream): Promise<void> {
  console.log(`${stream.peerAddr}: connected`);
  await stream.send(Message.new('Hello! You are connected to the humphrey-ws echo server.'));
  // The loop ends when the client closes the connection.
  for await (const message of stream) {
    console.log(`${stream.peerAddr}: message received: ${message.isText ? message.text() : `${message.byteLength} bytes`}`);
    await stream.send(message);
  }
  const { code } = await stream.closed;
  console.log(`${stream.peerAddr}: disconnected (${code})`);
}

const app = new App().withWebsocketRoute('/*', websocketHandler(echo));
const shutdown = shutdownSignal();
await app.run(process.argv[2] ?? '127.0.0.1:9001', { signal: shutdown });
// The signal makes the app close every connection (1001) and stop; then the process ends.
shutdown.addEventListener('abort', () => void app.close().then(() => process.exit(0)));
console.log(`listening on ${app.url.replace(/^http/, 'ws')}`);

/** An AbortSignal that fires on Ctrl-C or SIGTERM, for a graceful shutdown. */
function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
  return controller.signal;
}
