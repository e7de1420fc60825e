// Category 4: opcodes (RFC 6455 5.2). Opcodes 3-7 (reserved non-control) and 11-15 (reserved
// control) must fail the connection with 1002, also when they follow valid traffic.

import { describe, it } from 'node:test';
import { OP, encodeFrame, ping, text, binary, withClient } from './raw-client.js';
import { useTarget, opts } from './harness.js';

describe('4 opcodes', () => {
  const target = useTarget();

  const groups = [
    { id: 1, name: 'reserved non-control', opcodes: [3, 4, 5, 6, 7] },
    { id: 2, name: 'reserved control', opcodes: [11, 12, 13, 14, 15] },
  ];

  for (const g of groups) {
    let n = 0;
    for (const opcode of g.opcodes) {
      it(`4.${g.id}.${++n} ${g.name} opcode ${opcode}, empty payload -> 1002`, opts(), () =>
        withClient(target(), async (c) => {
          await c.send(encodeFrame({ opcode }));
          await c.expectFail([1002]);
        }),
      );
    }
    for (const opcode of g.opcodes) {
      it(`4.${g.id}.${++n} valid text, opcode ${opcode} with payload, ping (one write) -> echo, 1002, no pong`, opts(), () =>
        withClient(target(), async (c) => {
          await c.send([text('Hello, world!'), encodeFrame({ opcode, payload: 'reserved opcode' }), ping('no')]);
          await c.expectMessage(OP.TEXT, 'Hello, world!');
          await c.expectFail([1002]);
        }),
      );
    }
    for (const opcode of g.opcodes) {
      it(`4.${g.id}.${++n} opcode ${opcode} chopped into 1-byte writes after a completed echo -> 1002`, opts(), () =>
        withClient(target(), async (c) => {
          await c.send(binary(Buffer.from([1, 2, 3])));
          await c.expectMessage(OP.BINARY, Buffer.from([1, 2, 3]));
          await c.send(encodeFrame({ opcode, payload: Buffer.from([9, 9]) }), { chunks: 'bytes' });
          await c.expectFail([1002]);
        }),
      );
    }
  }

  it('4.3.1 reserved opcode 3 with FIN clear inside a fragmented text -> 1002, no echo', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([
        text('frag', { fin: false }),
        encodeFrame({ opcode: 3, payload: 'x', fin: false }),
        encodeFrame({ opcode: OP.CONT, payload: 'ment' }),
      ]);
      await c.expectFail([1002]);
    }),
  );

  it('4.3.2 reserved control opcode 11 between fragments -> 1002, no echo', opts(), () =>
    withClient(target(), async (c) => {
      await c.send([
        text('frag', { fin: false }),
        encodeFrame({ opcode: 11, payload: 'x' }),
        encodeFrame({ opcode: OP.CONT, payload: 'ment' }),
      ]);
      await c.expectFail([1002]);
    }),
  );
});
