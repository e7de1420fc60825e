// Category 5: fragmentation (RFC 6455 5.4). A message may arrive in any number of fragments,
// including empty ones; control frames may be interleaved but are never fragmented; a
// continuation needs an open message and a new data frame may not start while one is open.

import { describe, it } from 'node:test';
import { OP, text, binary, cont, ping, pong, close, fragments, withClient, type Chunking } from './raw-client.js';
import { useTarget, opts, pseudoRandomBytes, utf8Text } from './harness.js';

describe('5 fragmentation', () => {
  const target = useTarget();

  it('5.1 ping in two fragments (FIN clear, then continuation) -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([ping('fragmented ', { fin: false }), cont('ping')]);
      await c.expectFail([1002]);
    }),
  );

  it('5.2 pong in two fragments -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([pong('fragmented ', { fin: false }), cont('pong')]);
      await c.expectFail([1002]);
    }),
  );

  it('5.3 close in two fragments -> 1002', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([close(1000, 'frag', { fin: false }), cont('ment')]);
      await c.expectFail([1002]);
    }),
  );

  // Reassembly.
  const reassembly: { name: string; opcode: number; payload: Buffer; sizes: number[]; chunks?: Chunking; pause?: boolean }[] = [
    { name: 'text in 2 fragments', opcode: OP.TEXT, payload: Buffer.from('fragment1fragment2'), sizes: [9] },
    { name: 'text in 2 fragments, chopped into 1-byte writes', opcode: OP.TEXT, payload: Buffer.from('fragment1fragment2'), sizes: [9], chunks: 'bytes' },
    { name: 'text in 2 fragments with a pause between', opcode: OP.TEXT, payload: Buffer.from('fragment1fragment2'), sizes: [9], pause: true },
    { name: 'binary in 2 fragments', opcode: OP.BINARY, payload: pseudoRandomBytes(40, 1), sizes: [17] },
    { name: 'binary in 3 fragments', opcode: OP.BINARY, payload: pseudoRandomBytes(300, 2), sizes: [100, 100] },
    { name: 'text in 10 fragments', opcode: OP.TEXT, payload: utf8Text(1000), sizes: Array(9).fill(100) },
    { name: 'text in 1-byte fragments (multibyte characters split)', opcode: OP.TEXT, payload: utf8Text(64), sizes: Array(63).fill(1) },
    { name: 'binary in 1-byte fragments', opcode: OP.BINARY, payload: pseudoRandomBytes(64, 3), sizes: Array(63).fill(1) },
    { name: 'text with an empty first fragment', opcode: OP.TEXT, payload: Buffer.from('payload'), sizes: [0] },
    { name: 'text with an empty last fragment', opcode: OP.TEXT, payload: Buffer.from('payload'), sizes: [7] },
    { name: 'text with an empty middle fragment', opcode: OP.TEXT, payload: Buffer.from('payload'), sizes: [3, 0] },
    { name: 'binary with every fragment empty (3 fragments)', opcode: OP.BINARY, payload: Buffer.alloc(0), sizes: [0, 0] },
    { name: 'text with every fragment empty (3 fragments)', opcode: OP.TEXT, payload: Buffer.alloc(0), sizes: [0, 0] },
    { name: 'binary in 100 fragments, chopped randomly', opcode: OP.BINARY, payload: pseudoRandomBytes(10_000, 4), sizes: Array(99).fill(100), chunks: { random: [1, 333], seed: 5 } },
    { name: 'text of 200 KiB in 3 fragments of mixed sizes (7, 16 and 64-bit lengths)', opcode: OP.TEXT, payload: utf8Text(200 * 1024), sizes: [100, 60_000] },
  ];
  let n = 0;
  for (const r of reassembly) {
    it(`5.4.${++n} ${r.name} -> echoed as one message`, opts(), () =>
      withClient(target(), async (c) => {
        const frames = fragments(r.opcode, r.payload, r.sizes);
        if (r.pause) {
          for (const f of frames) {
            await c.send(f);
            await new Promise((res) => setTimeout(res, 100));
          }
        } else await c.send(frames, { chunks: r.chunks });
        await c.expectMessage(r.opcode, r.payload);
        await c.closeHandshake();
      }),
    );
  }

  // Control frames between fragments.
  const interleaved: { name: string; chunks?: Chunking; pause?: boolean }[] = [
    { name: 'one write' },
    { name: 'chopped into 1-byte writes', chunks: 'bytes' },
    { name: 'each frame after a pause', pause: true },
  ];
  n = 0;
  for (const v of interleaved) {
    it(`5.5.${++n} text in 2 fragments with a ping between (${v.name}) -> pong, then the echo`, opts(), () =>
      withClient(target(), async (c) => {
        const frames = [text('fragment1', { fin: false }), ping('ping payload'), cont('fragment2')];
        if (v.pause) {
          for (const f of frames) {
            await c.send(f);
            await new Promise((res) => setTimeout(res, 50));
          }
        } else await c.send(frames, { chunks: v.chunks });
        await c.expectPong('ping payload');
        await c.expectMessage(OP.TEXT, 'fragment1fragment2');
        await c.closeHandshake();
      }),
    );
  }
  for (const v of interleaved) {
    it(`5.5.${++n} text in 5 fragments with a ping after each (${v.name}) -> 4 pongs, then the echo`, opts(), () =>
      withClient(target(), async (c) => {
        const parts = ['fragment1', 'fragment2', 'fragment3', 'fragment4', 'fragment5'];
        const frames = [];
        for (let i = 0; i < parts.length; i++) {
          frames.push(i === 0 ? text(parts[i]!, { fin: false }) : cont(parts[i]!, { fin: i === parts.length - 1 }));
          if (i < parts.length - 1) frames.push(ping(`pongme ${i}`));
        }
        if (v.pause) {
          for (const f of frames) {
            await c.send(f);
            await new Promise((res) => setTimeout(res, 20));
          }
        } else await c.send(frames, { chunks: v.chunks });
        for (let i = 0; i < parts.length - 1; i++) await c.expectPong(`pongme ${i}`);
        await c.expectMessage(OP.TEXT, parts.join(''));
        await c.closeHandshake();
      }),
    );
  }
  it(`5.5.${++n} binary in 3 fragments with unsolicited pongs between -> echo only`, opts(), () =>
    withClient(target(), async (c) => {
      const data = pseudoRandomBytes(30, 9);
      await c.send([
        binary(data.subarray(0, 10), { fin: false }),
        pong('unsolicited 1'),
        cont(data.subarray(10, 20), { fin: false }),
        pong(''),
        cont(data.subarray(20)),
      ]);
      await c.expectMessage(OP.BINARY, data);
      await c.closeHandshake();
    }),
  );
  it(`5.5.${++n} the pong for a ping between fragments comes before the message is complete`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('first half, ', { fin: false }), ping('now')]);
      await c.expectPong('now');
      await c.send(cont('second half'));
      await c.expectMessage(OP.TEXT, 'first half, second half');
      await c.closeHandshake();
    }),
  );

  // Continuations without a message.
  const orphan: { name: string; fin: boolean; chunks?: Chunking; pause?: boolean }[] = [
    { name: 'FIN set', fin: true },
    { name: 'FIN set, chopped into 1-byte writes', fin: true, chunks: 'bytes' },
    { name: 'FIN clear', fin: false },
    { name: 'FIN clear, chopped into 1-byte writes', fin: false, chunks: 'bytes' },
  ];
  n = 0;
  for (const o of orphan) {
    it(`5.6.${++n} continuation (${o.name}) with no message started -> 1002`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send([cont('non-continuation payload', { fin: o.fin }), text('Hello, world!')], { chunks: o.chunks });
        await c.expectFail([1002]);
      }),
    );
  }
  it(`5.6.${++n} continuation after a complete text message -> echo, then 1002`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('complete'), cont('orphan')]);
      await c.expectMessage(OP.TEXT, 'complete');
      await c.expectFail([1002]);
    }),
  );
  it(`5.6.${++n} fragmented text, then a FIN continuation too many -> echo, then 1002`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('fragment1', { fin: false }), cont('fragment2'), cont('fragment3', { fin: true })]);
      await c.expectMessage(OP.TEXT, 'fragment1fragment2');
      await c.expectFail([1002]);
    }),
  );
  it(`5.6.${++n} orphan continuation (FIN clear), then text (FIN clear), then continuations -> 1002, no echo`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([
        cont('fragment1', { fin: false }),
        text('fragment2', { fin: false }),
        cont('fragment3'),
      ]);
      await c.expectFail([1002]);
    }),
  );
  it(`5.6.${++n} text split (FIN clear, FIN set), then a second message split with the same mistake -> echo, 1002`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([
        text('fragment1', { fin: false }),
        cont('fragment2', { fin: true }),
        cont('fragment3', { fin: false }),
        text('fragment4', { fin: true }),
      ]);
      await c.expectMessage(OP.TEXT, 'fragment1fragment2');
      await c.expectFail([1002]);
    }),
  );

  // A new data frame while a message is open.
  const nested: { name: string; first: Buffer; second: Buffer }[] = [
    { name: 'text (FIN clear), then text (FIN set)', first: text('one', { fin: false }), second: text('two') },
    { name: 'text (FIN clear), then text (FIN clear)', first: text('one', { fin: false }), second: text('two', { fin: false }) },
    { name: 'text (FIN clear), then binary (FIN set)', first: text('one', { fin: false }), second: binary('two') },
    { name: 'binary (FIN clear), then binary (FIN set)', first: binary('one', { fin: false }), second: binary('two') },
    { name: 'binary (FIN clear), then text (FIN set)', first: binary('one', { fin: false }), second: text('two') },
  ];
  n = 0;
  for (const x of nested) {
    it(`5.7.${++n} ${x.name} -> 1002, no echo`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send([x.first, x.second, cont('three')]);
        await c.expectFail([1002]);
      }),
    );
  }
  it(`5.7.${++n} text (FIN clear), continuation (FIN clear), then a new text after a pause -> 1002`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send([text('one', { fin: false }), cont('two', { fin: false })]);
      await c.expectSilence(100);
      await c.send(text('three'));
      await c.expectFail([1002]);
    }),
  );

  it('5.8.1 message fragments are not echoed before the final fragment', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(binary(Buffer.from([1, 2, 3]), { fin: false }));
      await c.expectSilence(150);
      await c.send(cont(Buffer.from([4, 5, 6])));
      await c.expectMessage(OP.BINARY, Buffer.from([1, 2, 3, 4, 5, 6]));
      await c.closeHandshake();
    }),
  );

  it('5.8.2 two fragmented messages back to back, text then binary', opts(), () =>
    withClient(target(), async (c) => {
      const bin = pseudoRandomBytes(1000, 11);
      await c.send([
        ...fragments(OP.TEXT, 'first message', [5, 3]),
        ...fragments(OP.BINARY, bin, [1, 500]),
      ]);
      await c.expectMessage(OP.TEXT, 'first message');
      await c.expectMessage(OP.BINARY, bin);
      await c.closeHandshake();
    }),
  );
});
