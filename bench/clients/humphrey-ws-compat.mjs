// Load side "humphrey-ws-compat": the ws.mjs client script with its import changed to
// humphrey-ws/ws (what a ws user gets by changing one line).
import { run } from './common.mjs';

const { default: WebSocket } = await import('../../dist/compat/ws.js');

await run({
  name: 'humphrey-ws-compat',
  open(url, o) {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, rejectUnauthorized: o.tls ? false : undefined });
      socket.once('error', reject);
      socket.once('open', () => {
        socket.off('error', reject);
        socket.on('error', () => {});
        resolve({
          send: (payload) => socket.send(payload),
          onMessage: (fn) => socket.on('message', fn),
          close: () =>
            new Promise((done) => {
              socket.once('close', done);
              socket.close(1000);
            }),
          terminate: () => socket.terminate(),
        });
      });
    });
  },
});
