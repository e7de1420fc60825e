// Target "bun": Bun's built-in WebSocket server (only run when a bun binary is on PATH).
// usage: bun bun.mjs <scenario>   prints the listening port
/* global Bun */
const scenario = process.argv[2] ?? 'echo-small';
const broadcast = scenario === 'broadcast';

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req, srv) {
    if (srv.upgrade(req)) return undefined;
    return new Response('expected a WebSocket upgrade', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    maxPayloadLength: 64 * 1024 * 1024,
    open(ws) {
      if (broadcast) ws.subscribe('all');
    },
    message(ws, message) {
      if (broadcast) server.publish('all', message);
      else ws.send(message);
    },
  },
});
console.log(server.port);
