// Category 3: reserved bits (RFC 6455 5.2). With no extension negotiated, a frame with RSV1,
// RSV2 or RSV3 set must fail the connection (1002). Everything before the bad frame must still
// be processed (a valid message sent just before, in the same write, is echoed first), and
// nothing after it (a ping sent just after is not answered).

import { describe, it } from 'node:test';
import { OP, encodeFrame, close, closePayload, ping, text, withClient, type FrameSpec } from './raw-client.js';
import { useTarget, opts } from './harness.js';

describe('3 reserved bits', () => {
  const target = useTarget();

  const frameKinds: { name: string; spec: FrameSpec }[] = [
    { name: 'text', spec: { opcode: OP.TEXT, payload: 'Hello, world!' } },
    { name: 'binary', spec: { opcode: OP.BINARY, payload: Buffer.from([0, 1, 2, 0xff]) } },
    { name: 'ping', spec: { opcode: OP.PING, payload: 'ping' } },
    { name: 'pong', spec: { opcode: OP.PONG, payload: 'pong' } },
    { name: 'close', spec: { opcode: OP.CLOSE, payload: closePayload(1000) } },
    { name: 'continuation (inside a fragmented text)', spec: { opcode: OP.CONT, payload: 'tail' } },
  ];
  const bits: { name: string; rsv: Partial<FrameSpec> }[] = [
    { name: 'RSV1', rsv: { rsv1: true } },
    { name: 'RSV2', rsv: { rsv2: true } },
    { name: 'RSV3', rsv: { rsv3: true } },
    { name: 'RSV1+RSV2+RSV3', rsv: { rsv1: true, rsv2: true, rsv3: true } },
  ];

  let n = 0;
  for (const bit of bits) {
    for (const kind of frameKinds) {
      it(`3.${++n} ${bit.name} on ${kind.name}, after a valid message in the same write -> echo, then 1002`, opts(), () =>
        withClient(target(), async (c) => {
          const before = kind.spec.opcode === OP.CONT ? [text('Hello ', { fin: false })] : [];
          await c.send([
            text('valid first'),
            ...before,
            encodeFrame({ ...kind.spec, ...bit.rsv }),
            ping('must not be answered'),
          ]);
          await c.expectMessage(OP.TEXT, 'valid first');
          await c.expectFail([1002]);
        }),
      );
    }
  }

  it(`3.${++n} RSV2 on text, alone in the connection -> 1002`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send(text('rsv2', { rsv2: true }));
      await c.expectFail([1002]);
    }),
  );

  it(`3.${++n} valid echo completed first, then RSV3 text chopped into 1-byte writes -> 1002`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send(text('Hello, world!'));
      await c.expectMessage(OP.TEXT, 'Hello, world!');
      await c.send([text('rsv3', { rsv3: true }), ping('no')], { chunks: 'bytes' });
      await c.expectFail([1002]);
    }),
  );

  it(`3.${++n} RSV1 on a close frame with a valid code -> 1002, not an echo of 1000`, opts(), () =>
    withClient(target(), async (c) => {
      await c.send(close(1000, 'bye', { rsv1: true }));
      await c.expectFail([1002]);
    }),
  );
});
