// Category 9: limits. Multi-megabyte messages in one frame and in many fragments are echoed
// intact; a message over the server's maximum size fails the connection with 1009, decided from
// the frame header alone (the payload is never sent) or from the running total of fragments.

import { describe, it } from 'node:test';
import { OP, encodeFrame, evenFragments, fragments, text, binary, cont, ping, withClient } from './raw-client.js';
import { useTarget, opts, pseudoRandomBytes, utf8Text, BIG_TEST_MS } from './harness.js';
import { DEFAULT_MAX_MESSAGE_SIZE, canLimitMessageSize } from './target.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const BIG_WAIT = 20_000;

describe('9 limits', () => {
  describe('large messages (default limit, 64 MiB)', () => {
    const target = useTarget();

    const kinds = [
      { id: 1, name: 'text', opcode: OP.TEXT, make: (n: number) => utf8Text(n) },
      { id: 2, name: 'binary', opcode: OP.BINARY, make: (n: number) => pseudoRandomBytes(n, n >>> 10) },
    ];
    for (const kind of kinds) {
      let n = 0;
      for (const size of [1 * MiB, 4 * MiB, 16 * MiB]) {
        it(`9.${kind.id}.${++n} ${kind.name} message of ${size / MiB} MiB in one frame -> echoed intact`, opts(BIG_TEST_MS), () =>
          withClient(target(), async (c) => {
            const payload = kind.make(size);
            await c.send(encodeFrame({ opcode: kind.opcode, payload }));
            await c.expectMessage(kind.opcode, payload, BIG_WAIT);
            await c.closeHandshake();
          }),
        );
      }
      for (const size of [1 * MiB, 4 * MiB, 16 * MiB]) {
        it(`9.${kind.id}.${++n} ${kind.name} message of ${size / MiB} MiB in 64 KiB fragments -> echoed intact`, opts(BIG_TEST_MS), () =>
          withClient(target(), async (c) => {
            const payload = kind.make(size);
            await c.send(evenFragments(kind.opcode, payload, 64 * KiB));
            await c.expectMessage(kind.opcode, payload, BIG_WAIT);
            await c.closeHandshake();
          }),
        );
      }
    }

    it('9.3.1 text message of 1 MiB in 1 KiB fragments -> echoed intact', opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payload = utf8Text(MiB);
        await c.send(evenFragments(OP.TEXT, payload, KiB));
        await c.expectMessage(OP.TEXT, payload, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it('9.3.2 binary message of 4 MiB in one frame, chopped into 1 KiB writes -> echoed intact', opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payload = pseudoRandomBytes(4 * MiB, 77);
        await c.send(binary(payload), { chunks: KiB, delayMs: 0 });
        await c.expectMessage(OP.BINARY, payload, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it('9.3.3 fifty 64 KiB binary messages in one write -> all echoed in order', opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payloads = Array.from({ length: 50 }, (_, i) => pseudoRandomBytes(64 * KiB, i + 1));
        await c.send(payloads.map((p) => binary(p)));
        for (const p of payloads) await c.expectMessage(OP.BINARY, p, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it('9.3.4 ping in the middle of a 4 MiB fragmented message -> pong, then the message', opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payload = pseudoRandomBytes(4 * MiB, 78);
        const frames = evenFragments(OP.BINARY, payload, 64 * KiB);
        await c.send([...frames.slice(0, 32), ping('mid-message'), ...frames.slice(32)]);
        await c.expectPong('mid-message', BIG_WAIT);
        await c.expectMessage(OP.BINARY, payload, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it('9.3.5 frame header announcing the default limit + 1 (64 MiB + 1), header only -> 1009', opts(), () =>
      withClient(target(), async (c) => {
        await c.send(encodeFrame({ opcode: OP.BINARY, declaredLength: DEFAULT_MAX_MESSAGE_SIZE + 1 }));
        await c.expectFail([1009]);
      }),
    );
  });

  const limited = canLimitMessageSize() ? {} : { skip: 'CONFORMANCE_URL_1MIB not set' };
  describe('maximum message size (--max-message-size 1 MiB)', limited, () => {
    const target = useTarget({ maxMessageSize: MiB });
    let n = 0;

    it(`9.4.${++n} binary message of exactly 1 MiB -> echoed`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payload = pseudoRandomBytes(MiB, 5);
        await c.send(binary(payload));
        await c.expectMessage(OP.BINARY, payload, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it(`9.4.${++n} text message of exactly 1 MiB in 16 fragments -> echoed`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payload = utf8Text(MiB);
        await c.send(evenFragments(OP.TEXT, payload, 64 * KiB));
        await c.expectMessage(OP.TEXT, payload, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it(`9.4.${++n} binary frame header announcing 1 MiB + 1, header only -> 1009 before any payload`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send(encodeFrame({ opcode: OP.BINARY, declaredLength: MiB + 1 }));
        await c.expectFail([1009]);
      }),
    );
    it(`9.4.${++n} text frame header announcing 1 MiB + 1 with a non-minimal 64-bit length, header only -> 1009`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send(encodeFrame({ opcode: OP.TEXT, declaredLength: MiB + 1, lengthEncoding: 64 }));
        await c.expectFail([1009]);
      }),
    );
    it(`9.4.${++n} header announcing 1 MiB + 1 chopped into 1-byte writes -> 1009`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send(encodeFrame({ opcode: OP.BINARY, declaredLength: MiB + 1 }), { chunks: 'bytes' });
        await c.expectFail([1009]);
      }),
    );
    it(`9.4.${++n} fragments 512 KiB + 512 KiB + 1 byte -> 1009`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        await c.send(fragments(OP.BINARY, pseudoRandomBytes(MiB + 1, 6), [512 * KiB, 512 * KiB]));
        await c.expectFail([1009], { timeoutMs: BIG_WAIT });
      }),
    );
    it(`9.4.${++n} seventeen 64 KiB text fragments -> 1009 (header of the 17th suffices)`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const frames = evenFragments(OP.TEXT, utf8Text(17 * 64 * KiB), 64 * KiB);
        // Send 16 full fragments and only the header of the 17th.
        const last = frames[16]!;
        await c.send([...frames.slice(0, 16), last.subarray(0, last.length - 64 * KiB)]);
        await c.expectFail([1009], { timeoutMs: BIG_WAIT });
      }),
    );
    it(`9.4.${++n} 1 MiB fragment (no FIN), then a continuation header of 1 byte -> 1009`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const first = binary(pseudoRandomBytes(MiB, 7), { fin: false });
        const header = cont(Buffer.from([1]));
        await c.send([first, header.subarray(0, header.length - 1)]);
        await c.expectFail([1009], { timeoutMs: BIG_WAIT });
      }),
    );
    it(`9.4.${++n} control frames do not count towards the limit (1 MiB message with pings between)`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const payload = pseudoRandomBytes(MiB, 8);
        const frames = evenFragments(OP.BINARY, payload, 256 * KiB);
        await c.send([frames[0]!, ping('a'.repeat(125)), frames[1]!, ping('b'.repeat(125)), ...frames.slice(2)]);
        await c.expectPong('a'.repeat(125), BIG_WAIT);
        await c.expectPong('b'.repeat(125), BIG_WAIT);
        await c.expectMessage(OP.BINARY, payload, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it(`9.4.${++n} the limit is per message: two 1 MiB messages back to back -> both echoed`, opts(BIG_TEST_MS), () =>
      withClient(target(), async (c) => {
        const one = pseudoRandomBytes(MiB, 9);
        const two = utf8Text(MiB);
        await c.send([binary(one), ...evenFragments(OP.TEXT, two, 100 * KiB)]);
        await c.expectMessage(OP.BINARY, one, BIG_WAIT);
        await c.expectMessage(OP.TEXT, two, BIG_WAIT);
        await c.closeHandshake();
      }),
    );
    it(`9.4.${++n} valid small message, then an oversized header in the same write -> echo, then 1009`, opts(), () =>
      withClient(target(), async (c) => {
        await c.send([text('small'), encodeFrame({ opcode: OP.TEXT, declaredLength: 2 * MiB })]);
        await c.expectMessage(OP.TEXT, 'small');
        await c.expectFail([1009]);
      }),
    );
  });
});
