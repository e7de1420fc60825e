// Chapter 2 of the guide, per-connection architecture: each handler echoes its own client and
// also forwards every line typed on the server's standard input to that client. The lines
// travel on a `Bus` (a broadcast channel); each handler awaits its bus reader alongside its
// stream, so nothing polls.
//
//   npx tsx examples/sync-broadcast/main.ts [address]     (default 127.0.0.1:9001)
import { createInterface } from 'node:readline';
import { App, Bus, websocketHandler, type WebSocketStream } from 'humphrey-ws';

async function handler(stream: WebSocketStream, lines: Bus<string>): Promise<void> {
  console.log(`${stream.peerAddr}: connected`);
  const reader = lines.subscribe();
  // Forward broadcast lines to this client until the connection or the bus closes.
  const forwarding = (async () => {
    for await (const line of reader) await stream.send(line).catch(() => reader.close());
  })();
  try {
    for await (const message of stream) {
      console.log(`${stream.peerAddr}: message received: ${message.isText ? message.text() : `${message.byteLength} bytes`}`);
      await stream.send(message);
    }
  } finally {
    reader.close();
    await forwarding;
    console.log(`${stream.peerAddr}: disconnected`);
  }
}

const lines = new Bus<string>();
const app = new App(lines).withWebsocketRoute('/*', websocketHandler(handler));
const shutdown = shutdownSignal();
await app.run(process.argv[2] ?? '127.0.0.1:9001', { signal: shutdown });
// The signal makes the app close every connection (1001) and stop; then the process ends.
shutdown.addEventListener('abort', () => void app.close().then(() => process.exit(0)));
console.log(`listening on ${app.url.replace(/^http/, 'ws')}`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const receivers = lines.send(line);
  console.log(`broadcast to ${receivers} client(s): ${line}`);
});

function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
  return controller.signal;
}
