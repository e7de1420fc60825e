// Target "humphrey-async": humphrey-ws event app API.
// usage: node humphrey-async.mjs <scenario>   prints the listening port
const scenario = process.argv[2] ?? 'echo-small';

let lib;
try {
  lib = await import('../../dist/index.js');
} catch (err) {
  console.error(`import failed: ${err.message}`);
  process.exit(2);
}
const { AsyncWebSocketApp } = lib;
if (typeof AsyncWebSocketApp !== 'function') {
  console.error('import failed: dist/index.js does not export AsyncWebSocketApp');
  process.exit(2);
}

// BENCH_TLS_CERT/BENCH_TLS_KEY (PEM paths) serve wss:// instead (bench/tls.mjs).
const app = new AsyncWebSocketApp()
  .withAddress('127.0.0.1:0')
  .withMessageHandler(
    scenario === 'broadcast'
      ? (stream, message) => stream.broadcast(message)
      : (stream, message) => stream.send(message),
  );
if (process.env.BENCH_TLS_CERT) app.withCert(process.env.BENCH_TLS_CERT, process.env.BENCH_TLS_KEY);
await app.run();
console.log(app.address.port);
