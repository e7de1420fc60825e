// wss:// with nothing else changed: give the HTTP app a certificate and a key.
//
//   npx tsx examples/tls/main.ts CERT.pem KEY.pem [address]     (default 127.0.0.1:8443)
import { App, websocketHandler } from 'humphrey-ws';

const [certPath = 'cert.pem', keyPath = 'key.pem', address = '127.0.0.1:8443'] = process.argv.slice(2);

const app = new App()
  .withCert(certPath, keyPath)
  .withRoute('/', () => 'served over https')
  .withWebsocketRoute('/ws', websocketHandler(async (stream) => {
    for await (const message of stream) await stream.send(message);
  }));

await app.run(address);
console.log(`listening on ${app.url}`); // https://...; WebSocket clients use wss://.../ws
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void app.close().then(() => process.exit(0)));
