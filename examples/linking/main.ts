// Chapter 5 of the guide: the event app inside an existing HTTP app. The HTTP app serves a
// normal route on `/` and hands upgrade requests on `/ws` to the WebSocket app, which then
// runs no server of its own. (This is also how TLS is added: give the HTTP app a certificate
// with `.withCert(certPath, keyPath)` and clients connect with wss://.)
//
//   npx tsx examples/linking/main.ts [address]     (default 127.0.0.1:8080)
import { App, AsyncWebSocketApp, HttpResponse, asyncWebsocketHandler } from 'humphrey-ws';

const websocketApp = AsyncWebSocketApp.unlinked()
  .withConnectHandler((stream) => console.log(`${stream.peerAddr}: client connected`))
  .withMessageHandler((stream, message) => {
    console.log(`${stream.peerAddr}: message received: ${message.isText ? message.text() : `${message.byteLength} bytes`}`);
    stream.send(message);
  })
  .withDisconnectHandler((stream) => console.log(`${stream.peerAddr}: client disconnected`));

const app = new App()
  .withStatelessRoute('/', () => HttpResponse.html('<h1>Hello from the HTTP app</h1><p>WebSocket on /ws</p>'))
  .withWebsocketRoute('/ws', asyncWebsocketHandler(websocketApp.connectHook()));

const shutdown = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => shutdown.abort());
await app.run(process.argv[2] ?? '127.0.0.1:8080', { signal: shutdown.signal });
console.log(`listening on ${app.url}`);
shutdown.signal.addEventListener('abort', () => void app.close().then(() => process.exit(0)));
