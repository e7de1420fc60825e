// Load side "humphrey": humphrey-ws's connect() (the WebSocketStream client).
import { run } from './common.mjs';

const { connect } = await import('../../dist/index.js');

await run({
  name: 'humphrey',
  async open(url, o) {
    const stream = await connect(url, { perMessageDeflate: false, tls: o.tls ? { rejectUnauthorized: false } : undefined });
    return {
      send: (payload) => void stream.send(payload).catch(() => {}),
      onMessage(fn) {
        (async () => {
          try {
            for await (const _message of stream) fn();
          } catch {
            // the connection ended: terminate() at the end of the window
          }
        })();
      },
      close: () => stream.close(1000),
      terminate: () => stream.terminate(),
    };
  },
});
