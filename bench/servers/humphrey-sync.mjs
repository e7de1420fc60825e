// Target "humphrey-sync": humphrey-ws per-connection handler API.
// usage: node humphrey-sync.mjs <scenario>   prints the listening port
import { readFileSync } from 'node:fs';

const scenario = process.argv[2] ?? 'echo-small';

let lib;
try {
  lib = await import('../../dist/index.js');
} catch (err) {
  console.error(`import failed: ${err.message}`);
  process.exit(2);
}
const { createUpgradeListener, websocketHandler } = lib;
if (typeof createUpgradeListener !== 'function' || typeof websocketHandler !== 'function') {
  console.error('import failed: dist/index.js does not export createUpgradeListener and websocketHandler');
  process.exit(2);
}

let handler;
if (scenario === 'broadcast') {
  // Broadcast expressed in user code, like the ws script: every message to every open stream.
  const streams = new Set();
  handler = async (stream) => {
    streams.add(stream);
    try {
      for await (const message of stream) {
        for (const s of streams) s.send(message);
      }
    } finally {
      streams.delete(stream);
    }
  };
} else {
  handler = async (stream) => {
    for await (const message of stream) stream.send(message);
  };
}

// The per-connection handler on the library's own upgrade listener, as `humphrey-ws echo`
// runs it (the HTTP App puts node:http in front of every connection instead).
const route = websocketHandler(handler);
// BENCH_TLS_CERT/BENCH_TLS_KEY (PEM paths) serve wss:// instead (bench/tls.mjs).
const tls = process.env.BENCH_TLS_CERT
  ? { cert: readFileSync(process.env.BENCH_TLS_CERT), key: readFileSync(process.env.BENCH_TLS_KEY) }
  : undefined;
const server = createUpgradeListener((request, socket, head) => route(request, socket, head, undefined), tls ? { tls } : {});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
console.log(server.address().port);
