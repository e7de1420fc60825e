// Chapter 3 of the guide, event architecture: handlers run per event (connect, message,
// disconnect) instead of per connection. Each client is welcomed, every message is
// acknowledged, and a heartbeat (ping every 5 s, drop after 10 s of silence) removes clients
// that vanished without closing.
//
//   npx tsx examples/async-echo/main.ts [address]     (default 127.0.0.1:9001)
import { AsyncWebSocketApp } from 'humphrey-ws';

const app = new AsyncWebSocketApp()
  .withAddress(process.argv[2] ?? '127.0.0.1:9001')
  .withHeartbeat({ intervalMs: 5000, timeoutMs: 10000 })
  .withConnectHandler((stream) => {
    console.log(`${stream.peerAddr}: client connected`);
    stream.send(`Welcome, ${stream.peerAddr}!`);
  })
  .withMessageHandler((stream, message) => {
    const text = message.isText ? message.text() : `${message.byteLength} bytes`;
    console.log(`${stream.peerAddr}: message received: ${text}`);
    stream.send(`Message received: ${text}`);
  })
  .withDisconnectHandler((stream) => {
    console.log(`${stream.peerAddr}: client disconnected`);
  });

const shutdown = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => shutdown.abort());
await app.run({ signal: shutdown.signal });
console.log(`listening on ${app.url}`);
// Aborting closes every client with 1001, runs their disconnect handlers, then stops.
shutdown.signal.addEventListener('abort', () => void app.close().then(() => process.exit(0)));
