// Category 10: miscellaneous. Pipelining, several connections at once, and data that arrives
// together with the opening handshake.

import { describe, it } from 'node:test';
import { OP, RawClient, text, binary, cont, ping, sleep, withClient } from './raw-client.js';
import { useTarget, opts, pseudoRandomBytes, utf8Text, BIG_TEST_MS } from './harness.js';

describe('10 misc', () => {
  const target = useTarget();

  const mixed = (count: number) =>
    Array.from({ length: count }, (_, i) =>
      i % 2 === 0
        ? { opcode: OP.TEXT, data: utf8Text((i * 37) % 300) }
        : { opcode: OP.BINARY, data: pseudoRandomBytes((i * 101) % 70_000, i) },
    );

  it('10.1 100 text/binary messages of mixed sizes pipelined in one write -> all echoed in order', opts(), () =>
    withClient(target(), async (c) => {
      const msgs = mixed(100);
      await c.send(msgs.map((m) => (m.opcode === OP.TEXT ? text(m.data) : binary(m.data))));
      for (const m of msgs) await c.expectMessage(m.opcode, m.data);
      await c.closeHandshake();
    }),
  );

  it('10.2 1000 small messages in one write -> all echoed in order', opts(), () =>
    withClient(target(), async (c) => {
      const msgs = Array.from({ length: 1000 }, (_, i) => `message ${i}`);
      await c.send(msgs.map((m) => text(m)));
      for (const m of msgs) await c.expectMessage(OP.TEXT, m);
      await c.closeHandshake();
    }),
  );

  it('10.3 100 pipelined messages chopped into random writes of 1..1500 bytes -> all echoed in order', opts(), () =>
    withClient(target(), async (c) => {
      const msgs = mixed(100);
      await c.send(
        msgs.map((m) => (m.opcode === OP.TEXT ? text(m.data) : binary(m.data))),
        { chunks: { random: [1, 1500], seed: 10 }, delayMs: 0 },
      );
      for (const m of msgs) await c.expectMessage(m.opcode, m.data);
      await c.closeHandshake();
    }),
  );

  it('10.4 a second connection is served while the first is in the middle of a frame', opts(), () =>
    withClient(target(), async (first) => {
      const payload = utf8Text(10_000);
      const frame = text(payload);
      await first.send(frame.subarray(0, 5000));
      await withClient(target(), async (second) => {
        await second.send(text('second connection'));
        await second.expectMessage(OP.TEXT, 'second connection');
        await second.closeHandshake();
      });
      await first.send(frame.subarray(5000));
      await first.expectMessage(OP.TEXT, payload);
      await first.closeHandshake();
    }),
  );

  it('10.5 a second connection is served while the first is in the middle of a fragmented message', opts(), () =>
    withClient(target(), async (first) => {
      await first.send([binary(Buffer.from([1, 2]), { fin: false }), ping('first')]);
      await first.expectPong('first');
      await withClient(target(), async (second) => {
        await second.send([binary(Buffer.from([9, 9]), { fin: false }), cont(Buffer.from([8]))]);
        await second.expectMessage(OP.BINARY, Buffer.from([9, 9, 8]));
        await second.closeHandshake();
      });
      await first.send(cont(Buffer.from([3])));
      await first.expectMessage(OP.BINARY, Buffer.from([1, 2, 3]));
      await first.closeHandshake();
    }),
  );

  it('10.6 20 concurrent connections, each with its own pipelined messages -> every echo on the right connection', opts(BIG_TEST_MS), async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(target())));
    try {
      await Promise.all(
        clients.map(async (c, i) => {
          const msgs = Array.from({ length: 20 }, (_, j) => pseudoRandomBytes(100 + j * 50, i * 100 + j + 1));
          await c.send(msgs.map((m) => binary(m)), { chunks: { random: [1, 4000], seed: i }, delayMs: 0 });
          for (const m of msgs) await c.expectMessage(OP.BINARY, m, 5000);
          await c.closeHandshake(1000, `client ${i}`, 5000);
          c.assertNoViolations();
        }),
      );
    } finally {
      for (const c of clients) c.destroy();
    }
  });

  it('10.7 first frames in the same TCP write as the opening handshake -> echoed', opts(), () =>
    withClient(
      target(),
      async (c) => {
        await c.expectEchoesAndPongs([{ opcode: OP.TEXT, data: 'right behind the handshake' }], ['and a ping']);
        await c.closeHandshake();
      },
      { trailing: Buffer.concat([text('right behind the handshake'), ping('and a ping')]) },
    ),
  );

  it('10.8 opening handshake chopped into 1-byte writes, then a message -> echoed', opts(), () =>
    withClient(
      target(),
      async (c) => {
        await c.send(text('after a slow handshake'));
        await c.expectMessage(OP.TEXT, 'after a slow handshake');
        await c.closeHandshake();
      },
      { delivery: { chunks: 'bytes', delayMs: 0 } },
    ),
  );

  it('10.9 a connection that stays idle for a second is still served', opts(), () =>
    withClient(target(), async (c) => {
      await c.expectSilence(1000);
      await c.send(text('after a pause'));
      await c.expectMessage(OP.TEXT, 'after a pause');
      await c.closeHandshake();
    }),
  );

  // Autobahn 9.7/9.8 time sequential round trips. A server that writes a frame header and its
  // payload as separate small TCP segments without TCP_NODELAY stalls ~40 ms per message
  // (Nagle + delayed ACK); on loopback a round trip takes well under a millisecond.
  for (const [id, size, opcode] of [
    ['10.11', 16, OP.TEXT],
    ['10.12', 4096, OP.BINARY],
  ] as const) {
    it(`${id} 500 sequential round trips of ${size}-byte ${opcode === OP.TEXT ? 'text' : 'binary'} messages within 3 s (no Nagle stalls)`, opts(10_000), () =>
      withClient(target(), async (c) => {
        const payload = opcode === OP.TEXT ? utf8Text(size) : pseudoRandomBytes(size, 12);
        const start = performance.now();
        for (let i = 0; i < 500; i++) {
          await c.send(opcode === OP.TEXT ? text(payload) : binary(payload));
          await c.expectMessage(opcode, payload);
        }
        const elapsed = performance.now() - start;
        if (elapsed > 3000) throw c.failure(`500 round trips took ${Math.round(elapsed)} ms (limit 3000 ms)`);
        await c.closeHandshake();
      }),
    );
  }

  it('10.13 slow reader: 8 MiB of messages sent while the client does not read for 500 ms -> all echoed in order', opts(BIG_TEST_MS), () =>
    withClient(target(), async (c) => {
      const msgs = Array.from({ length: 16 }, (_, i) => pseudoRandomBytes(512 * 1024, 100 + i));
      c.socket.pause();
      const sending = c.send(msgs.map((m) => binary(m)));
      await sleep(500);
      c.socket.resume();
      await sending;
      for (const m of msgs) await c.expectMessage(OP.BINARY, m, 20_000);
      await c.closeHandshake();
    }),
  );

  it('10.14 slow reader: reads resumed in small steps while pings and messages keep coming -> nothing lost', opts(BIG_TEST_MS), () =>
    withClient(target(), async (c) => {
      const msgs = Array.from({ length: 40 }, (_, i) => pseudoRandomBytes(100 * 1024, 200 + i));
      const frames: Buffer[] = [];
      msgs.forEach((m, i) => frames.push(binary(m), ping(`p${i}`)));
      c.socket.pause();
      const sending = c.send(frames, { chunks: 256 * 1024, delayMs: 0 });
      for (let i = 0; i < 10; i++) {
        await sleep(30);
        c.socket.resume();
        await sleep(5);
        c.socket.pause();
      }
      c.socket.resume();
      await sending;
      await c.expectEchoesAndPongs(
        msgs.map((m) => ({ opcode: OP.BINARY, data: m })),
        msgs.map((_, i) => `p${i}`),
        20_000,
      );
      await c.closeHandshake();
    }),
  );

  it('10.10 echo of a 65536-byte text in one frame, chopped into 1300-byte writes (Autobahn 10.1.1)', opts(), () =>
    withClient(target(), async (c) => {
      const payload = utf8Text(65536);
      await c.send(text(payload), { chunks: 1300 });
      await c.expectMessage(OP.TEXT, payload);
      await c.closeHandshake();
    }),
  );
});
