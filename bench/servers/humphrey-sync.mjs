// Target "humphrey-sync": humphrey-ws per-connection handler API.
// usage: node humphrey-sync.mjs <scenario>   prints the listening port
const scenario = process.argv[2] ?? 'echo-small';

let lib;
try {
  lib = await import('../../dist/index.js');
} catch (err) {
  console.error(`import failed: ${err.message}`);
  process.exit(2);
}
const { App, websocketHandler } = lib;
if (typeof App !== 'function' || typeof websocketHandler !== 'function') {
  console.error('import failed: dist/index.js does not export App and websocketHandler');
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

const app = new App().withWebsocketRoute('/*', websocketHandler(handler));
await app.run('127.0.0.1:0');
console.log(app.address.port);
