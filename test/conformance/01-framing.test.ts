// Category 1: framing. Data frames of every interesting length, in one write and chopped,
// length encodings the RFC leaves legal but unusual, and lengths that must be refused.

import { describe, it } from 'node:test';
import { OP, encodeFrame, withClient, type Chunking } from './raw-client.js';
import { useTarget, opts, pseudoRandomBytes, utf8Text, BIG_TEST_MS } from './harness.js';

const MiB = 1024 * 1024;

describe('1 framing', () => {
  const target = useTarget();

  const kinds = [
    { name: 'text', opcode: OP.TEXT, make: (n: number) => utf8Text(n) },
    { name: 'binary', opcode: OP.BINARY, make: (n: number) => pseudoRandomBytes(n, n + 7) },
  ];

  const echoCase = (opcode: number, payload: Buffer, chunks?: Chunking, waitMs?: number) => () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode, payload }), { chunks });
      await c.expectMessage(opcode, payload, waitMs);
      await c.closeHandshake();
    });

  let n = 0;
  for (const kind of kinds) {
    n++;
    let m = 0;
    for (const len of [0, 1, 125, 126, 127, 128, 65535, 65536]) {
      it(`1.${n}.${++m} ${kind.name}, ${len} bytes, one write`, opts(), echoCase(kind.opcode, kind.make(len)));
    }
    for (const len of [0, 1, 125, 126, 127, 128]) {
      it(
        `1.${n}.${++m} ${kind.name}, ${len} bytes, chopped byte by byte`,
        opts(),
        echoCase(kind.opcode, kind.make(len), 'bytes'),
      );
    }
    for (const len of [65535, 65536]) {
      it(
        `1.${n}.${++m} ${kind.name}, ${len} bytes, random chunks of 1..997 bytes`,
        opts(),
        echoCase(kind.opcode, kind.make(len), { random: [1, 997], seed: len }),
      );
    }
    it(
      `1.${n}.${++m} ${kind.name}, 16 MiB, one write`,
      opts(BIG_TEST_MS),
      echoCase(kind.opcode, kind.make(16 * MiB), undefined, 20_000),
    );
    it(
      `1.${n}.${++m} ${kind.name}, 16 MiB, random chunks of 1..128 KiB`,
      opts(BIG_TEST_MS),
      echoCase(kind.opcode, kind.make(16 * MiB), { random: [1, 128 * 1024], seed: 16 }, 20_000),
    );
  }

  // Frame headers with a 64-bit length (2 + 8 + 4 bytes) split at every byte, then the payload.
  for (const kind of kinds) {
    n++;
    it(`1.${n}.1 ${kind.name}, 65536 bytes, 14-byte header delivered byte by byte, then the payload`, opts(), () =>
      withClient(target(), async (c) => {
        const payload = kind.make(65536);
        await c.send(encodeFrame({ opcode: kind.opcode, payload }), { chunks: Array(14).fill(1), delayMs: 1 });
        await c.expectMessage(kind.opcode, payload);
        await c.closeHandshake();
      }),
    );
    it(`1.${n}.2 ${kind.name}, 70000 bytes, split once at every offset of the header and first payload bytes`, opts(), () =>
      withClient(target(), async (c) => {
        const payload = kind.make(70000);
        for (let at = 1; at <= 18; at++) {
          await c.send(encodeFrame({ opcode: kind.opcode, payload }), { chunks: [at], delayMs: 2 });
          await c.expectMessage(kind.opcode, payload);
        }
        await c.closeHandshake();
      }),
    );
  }

  // 1.5: length encodings. RFC 6455 5.2 says the minimal encoding MUST be used, but it gives
  // no failure for a non-minimal one; Autobahn and every widely used server accept them, and so
  // must we (the case documents the decision).
  const nonMinimal: [string, number, 16 | 64][] = [
    ['0 bytes with a 16-bit length', 0, 16],
    ['5 bytes with a 16-bit length', 5, 16],
    ['125 bytes with a 16-bit length', 125, 16],
    ['5 bytes with a 64-bit length', 5, 64],
    ['125 bytes with a 64-bit length', 125, 64],
    ['200 bytes with a 64-bit length', 200, 64],
    ['65535 bytes with a 64-bit length', 65535, 64],
  ];
  let k = 0;
  for (const [label, len, enc] of nonMinimal) {
    for (const kind of kinds) {
      it(`1.5.${++k} non-minimal: ${kind.name}, ${label}, accepted`, opts(), () =>
        withClient(target(), async (c) => {
          const payload = kind.make(len);
          await c.send(encodeFrame({ opcode: kind.opcode, payload, lengthEncoding: enc }), {
            chunks: len < 130 ? 'bytes' : undefined,
          });
          await c.expectMessage(kind.opcode, payload);
          await c.closeHandshake();
        }),
      );
    }
  }

  // 1.6: lengths that cannot be accepted.
  it('1.6.1 64-bit length with the most significant bit set -> 1002 or 1009', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.BINARY, declaredLength: 1n << 63n, payload: 'abc' }));
      await c.expectFail([1002, 1009]);
    }),
  );

  it('1.6.2 64-bit length 0xFFFFFFFFFFFFFFFF -> 1002 or 1009', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.TEXT, declaredLength: 0xffffffffffffffffn }));
      await c.expectFail([1002, 1009]);
    }),
  );

  it('1.6.3 64-bit length 2^63-1 (legal encoding, far over any limit), header only -> 1009', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.BINARY, declaredLength: (1n << 63n) - 1n }));
      await c.expectFail([1009]);
    }),
  );

  it('1.6.4 valid echo first, then a 64-bit length with the MSB set in the same write', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([
        encodeFrame({ opcode: OP.TEXT, payload: 'before' }),
        encodeFrame({ opcode: OP.TEXT, declaredLength: 1n << 63n }),
      ]);
      await c.expectMessage(OP.TEXT, 'before');
      await c.expectFail([1002, 1009]);
    }),
  );

  // 1.7: masking (RFC 6455 5.1, 5.3).
  it('1.7.1 unmasked text frame -> connection closed (close 1002 optional)', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.TEXT, payload: 'not masked', mask: false }));
      await c.expectFail([1002], { allowDrop: true });
    }),
  );

  it('1.7.2 unmasked empty binary frame -> connection closed (close 1002 optional)', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.BINARY, mask: false }));
      await c.expectFail([1002], { allowDrop: true });
    }),
  );

  it('1.7.3 unmasked ping -> connection closed, no pong (close 1002 optional)', opts(), () =>
    withClient(target(), async (c) => {
      await c.send(encodeFrame({ opcode: OP.PING, payload: 'p', mask: false }));
      await c.expectFail([1002], { allowDrop: true });
    }),
  );

  it('1.7.4 valid echo, then an unmasked frame in the same write', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([
        encodeFrame({ opcode: OP.TEXT, payload: 'masked' }),
        encodeFrame({ opcode: OP.TEXT, payload: 'not masked', mask: false }),
      ]);
      await c.expectMessage(OP.TEXT, 'masked');
      await c.expectFail([1002], { allowDrop: true });
    }),
  );

  it('1.7.5 all-zero masking key is a valid key', opts(), () =>
    withClient(target(), async (c) => {
      const payload = utf8Text(300);
      await c.send(encodeFrame({ opcode: OP.TEXT, payload, mask: Buffer.alloc(4) }));
      await c.expectMessage(OP.TEXT, payload);
      await c.closeHandshake();
    }),
  );

  it('1.7.6 every frame uses a different masking key (many small frames)', opts(), () =>
    withClient(target(), async (c) => {
      const frames: Buffer[] = [];
      const payloads: Buffer[] = [];
      for (let i = 0; i < 50; i++) {
        const p = pseudoRandomBytes(1 + i * 3, i + 1);
        payloads.push(p);
        frames.push(encodeFrame({ opcode: OP.BINARY, payload: p }));
      }
      await c.send(frames, { chunks: { random: [1, 64], seed: 3 } });
      for (const p of payloads) await c.expectMessage(OP.BINARY, p);
      await c.closeHandshake();
    }),
  );
});
