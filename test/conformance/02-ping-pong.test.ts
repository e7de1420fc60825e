// Category 2: ping and pong (RFC 6455 5.5.2, 5.5.3). A ping is answered by a pong with the
// identical payload; pongs are never answered; control frames are at most 125 bytes and never
// fragmented.

import { describe, it } from 'node:test';
import { OP, ping, pong, text, encodeFrame, withClient } from './raw-client.js';
import { useTarget, opts, pseudoRandomBytes } from './harness.js';

describe('2 ping/pong', () => {
  const target = useTarget();

  const pingCase = (payload: Buffer | string, chunks?: 'bytes') => () =>
    withClient(target(), async (c) => {
      await c.send(ping(payload), { chunks });
      await c.expectPong(payload);
      await c.closeHandshake();
    });

  it('2.1 ping without payload -> pong without payload', opts(), pingCase(''));
  it('2.2 ping with a small text payload -> identical pong', opts(), pingCase('Hello, world!'));
  it(
    '2.3 ping with a binary payload (all byte values incl. 00 and FF) -> identical pong',
    opts(),
    pingCase(Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff, 0x80, 0x7f])),
  );
  it('2.4 ping with a 125-byte payload -> identical pong', opts(), pingCase(pseudoRandomBytes(125, 4)));

  it('2.5 ping with a 126-byte payload -> 1002, no pong', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(ping(pseudoRandomBytes(126, 5)));
      await c.expectFail([1002]);
    }),
  );

  it('2.6 ping with a 125-byte payload chopped into 1-byte writes -> identical pong', opts(), pingCase(pseudoRandomBytes(125, 6), 'bytes'));

  it('2.7 unsolicited pong without payload is ignored', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([pong(''), text('after pong')]);
      await c.expectMessage(OP.TEXT, 'after pong');
      await c.closeHandshake();
    }),
  );

  it('2.8 unsolicited pong with a payload is ignored', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([pong('unsolicited pong payload'), text('after pong')]);
      await c.expectMessage(OP.TEXT, 'after pong');
      await c.closeHandshake();
    }),
  );

  it('2.9 unsolicited pong, then ping -> only the pong for the ping', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([pong('unsolicited'), ping('solicited')]);
      await c.expectPong('solicited');
      await c.expectSilence(100);
      await c.closeHandshake();
    }),
  );

  it('2.10 ten pings in one write -> ten pongs in order', opts(), () =>
    withClient(target(), async (c) => {
      const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
      await c.send(payloads.map((p) => ping(p)));
      for (const p of payloads) await c.expectPong(p);
      await c.closeHandshake();
    }),
  );

  it('2.11 ten pings chopped into 1-byte writes -> ten pongs in order', opts(), () =>
    withClient(target(), async (c) => {
      const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
      await c.send(
        payloads.map((p) => ping(p)),
        { chunks: 'bytes' },
      );
      for (const p of payloads) await c.expectPong(p);
      await c.closeHandshake();
    }),
  );

  it('2.12 ten pings with a pause between each -> ten pongs in order', opts(), () =>
    withClient(target(), async (c) => {
      const payloads = Array.from({ length: 10 }, (_, i) => pseudoRandomBytes(i * 12, i + 1));
      for (const p of payloads) {
        await c.send(ping(p));
        await c.expectPong(p);
      }
      await c.closeHandshake();
    }),
  );

  it('2.13 pong with a 126-byte payload -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(pong(pseudoRandomBytes(126, 7)));
      await c.expectFail([1002]);
    }),
  );

  it('2.14 ping with FIN clear (fragmented control frame) -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(ping('fragment', { fin: false }));
      await c.expectFail([1002]);
    }),
  );

  it('2.15 ping split in a FIN-clear ping and a continuation -> 1002, no pong', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([ping('frag', { fin: false }), encodeFrame({ opcode: OP.CONT, payload: 'ment' })]);
      await c.expectFail([1002]);
    }),
  );

  it('2.16 ping with a 126-byte payload in a 16-bit length -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(ping(pseudoRandomBytes(126, 8), { lengthEncoding: 16 }));
      await c.expectFail([1002]);
    }),
  );

  it('2.17 ping with a 64 KiB payload (64-bit length) -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(ping(pseudoRandomBytes(65536, 9)));
      await c.expectFail([1002]);
    }),
  );

  // The RFC does not order a pong relative to the echoes of data messages (an application may
  // answer later than the protocol layer), so only the echoes' order is checked.
  it('2.18 ping between two text messages -> both echoes in order and one pong', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('one'), ping('between'), text('two')]);
      await c.expectEchoesAndPongs(
        [
          { opcode: OP.TEXT, data: 'one' },
          { opcode: OP.TEXT, data: 'two' },
        ],
        ['between'],
      );
      await c.closeHandshake();
    }),
  );
});
