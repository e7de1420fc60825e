// Chapter 4 of the guide, event architecture: every client is echoed, every connect is
// announced to everyone, and each line typed on the server's standard input is broadcast to
// all clients through an `AsyncSender`, which works from outside any event handler.
//
//   npx tsx examples/async-broadcast/main.ts [address]     (default 127.0.0.1:9001)
import { createInterface } from 'node:readline';
import { AsyncWebSocketApp } from 'humphrey-ws';

const app = new AsyncWebSocketApp()
  .withAddress(process.argv[2] ?? '127.0.0.1:9001')
  .withConnectHandler((stream) => {
    console.log(`${stream.peerAddr}: client connected`);
    stream.broadcast(`Welcome, ${stream.peerAddr}!`);
  })
  .withMessageHandler((stream, message) => {
    console.log(`${stream.peerAddr}: message received: ${message.isText ? message.text() : `${message.byteLength} bytes`}`);
    stream.send(message);
  })
  .withDisconnectHandler((stream) => console.log(`${stream.peerAddr}: client disconnected`));

const shutdown = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => shutdown.abort());
await app.run({ signal: shutdown.signal });
console.log(`listening on ${app.url}`);
shutdown.signal.addEventListener('abort', () => void app.close().then(() => process.exit(0)));

// The sender reaches every connected client from anywhere: here, from stdin.
const sender = app.sender();
createInterface({ input: process.stdin }).on('line', (line) => {
  const { queued, skipped } = sender.broadcast(line);
  console.log(`broadcast to ${queued} client(s), ${skipped} skipped: ${line}`);
});
