// Load side "ws": the ws package's client, with its native add-ons, as people run it.
import WebSocket from 'ws';
import { run } from './common.mjs';

await run({
  name: 'ws',
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
