// Target "humphrey-ws-compat": the ws server script (ws-8.mjs) with its import changed to
// humphrey-ws/ws, the ws package's API over this library.
// usage: node humphrey-ws-compat.mjs <scenario>   prints the listening port
const scenario = process.argv[2] ?? 'echo-small';

let WebSocketServer;
try {
  ({ WebSocketServer } = await import('../../dist/compat/ws.js'));
} catch (err) {
  console.error(`import failed: ${err.message}`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});

if (scenario === 'broadcast') {
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      for (const c of wss.clients) c.send(data, { binary: isBinary });
    });
  });
} else {
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
}

wss.on('listening', () => {
  console.log(wss.address().port);
});
