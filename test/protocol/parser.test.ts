import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketError } from '../../src/protocol/errors.js';
import { DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, FrameParser, PARTS_MIN_SIZE } from '../../src/protocol/parser.js';
import { bytes, cframe, ctl, err, frame, hex, KEY, msg, OP, recordingParser, splitAt, type FrameSpec } from './helpers.js';

function payloadOf(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + 1) & 0xff;
  return out;
}

/** A frame in the direction the role receives: masked for a server, unmasked for a client. */
function inbound(role: 'server' | 'client', spec: FrameSpec): Buffer {
  return role === 'server' ? cframe(spec) : frame(spec);
}

const PROTOCOL_ERROR = 1002;

describe('parser: data frames', () => {
  test('RFC 6455 5.7 examples', () => {
    const client = recordingParser('client');
    client.push(hex('81 05 48 65 6c 6c 6f'));
    client.push(hex('01 03 48 65 6c'), hex('80 02 6c 6f'));
    client.push(hex('89 05 48 65 6c 6c 6f'));
    client.push(hex('82 7e 01 00'), payloadOf(256));
    client.push(hex('82 7f 00 00 00 00 00 01 00 00'), payloadOf(65536));
    assert.deepEqual(client.events, [
      msg('Hello', true),
      msg('Hello', true),
      ctl(OP.PING, 'Hello'),
      msg(payloadOf(256), false),
      msg(payloadOf(65536), false),
    ]);
    const server = recordingParser('server');
    server.push(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'));
    server.push(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'));
    assert.deepEqual(server.events, [msg('Hello', true), ctl(OP.PONG, 'Hello')]);
  });

  for (const role of ['server', 'client'] as const) {
    test(`${role}: text and binary in one frame, at the length boundaries 0, 1, 125, 126, 127, 65535, 65536`, () => {
      for (const length of [0, 1, 125, 126, 127, 65535, 65536]) {
        const p = recordingParser(role);
        const data = payloadOf(length);
        const textData = Buffer.alloc(length, 'a');
        p.push(inbound(role, { opcode: OP.BINARY, payload: data }));
        p.push(inbound(role, { opcode: OP.TEXT, payload: textData }));
        assert.deepEqual(p.events, [msg(data, false), msg(textData, true)], `length ${length}`);
      }
    });

    test(`${role}: non-minimal length encodings are accepted`, () => {
      const cases: [number, 16 | 64][] = [[0, 16], [5, 16], [125, 16], [0, 64], [5, 64], [126, 64], [65535, 64]];
      for (const [length, lengthBits] of cases) {
        const p = recordingParser(role);
        const data = payloadOf(length);
        const f = inbound(role, { opcode: OP.BINARY, payload: data, lengthBits });
        assert.equal(f[1]! & 0x7f, lengthBits === 16 ? 126 : 127);
        p.push(f);
        assert.deepEqual(p.events, [msg(data, false)], `${length} in ${lengthBits} bits`);
      }
    });

    test(`${role}: frames of each length encoding split at every byte position`, () => {
      for (const length of [0, 3, 130]) {
        for (const lengthBits of [7, 16, 64] as const) {
          if (lengthBits === 7 && length > 125) continue;
          const f = inbound(role, { opcode: OP.TEXT, payload: Buffer.alloc(length, 'x'), lengthBits });
          for (let cut = 0; cut <= f.length; cut++) {
            const p = recordingParser(role);
            p.push(...splitAt(f, [cut]));
            assert.deepEqual(p.events, [msg(Buffer.alloc(length, 'x'), true)], `${length}/${lengthBits} cut ${cut}`);
          }
          const p = recordingParser(role);
          for (const byte of f) p.push(Buffer.of(byte));
          assert.deepEqual(p.events, [msg(Buffer.alloc(length, 'x'), true)], `${length}/${lengthBits} byte by byte`);
        }
      }
    });
  }

  test('several frames in one push, and a frame spread over many pushes', () => {
    const p = recordingParser('server');
    const a = cframe({ opcode: OP.TEXT, payload: 'one' });
    const b = cframe({ opcode: OP.BINARY, payload: hex('0102') });
    const c = cframe({ opcode: OP.PING, payload: 'p' });
    const d = cframe({ opcode: OP.TEXT, payload: '' });
    p.push(bytes(a, b, c, d));
    assert.deepEqual(p.events, [msg('one', true), msg(hex('0102'), false), ctl(OP.PING, 'p'), msg('', true)]);
    const big = payloadOf(70000);
    const f = cframe({ opcode: OP.BINARY, payload: big });
    const q = recordingParser('server');
    q.push(...splitAt(f, [1, 5, 11, 12, 14, 100, 1000, 65536, 69999]));
    assert.deepEqual(q.events, [msg(big, false)]);
  });

  test('an empty fragmented message is one empty message', () => {
    const p = recordingParser('server');
    p.push(cframe({ opcode: OP.TEXT, fin: false }), cframe({ opcode: OP.CONT, fin: false }), cframe({ opcode: OP.CONT }));
    p.push(cframe({ opcode: OP.BINARY, fin: false }), cframe({ opcode: OP.CONT }));
    assert.deepEqual(p.events, [msg('', true), msg('', false)]);
  });

  test('fragmented messages assemble, with control frames interleaved delivered as they come', () => {
    const p = recordingParser('server');
    p.push(cframe({ opcode: OP.TEXT, fin: false, payload: 'Hel' }));
    p.push(cframe({ opcode: OP.PING, payload: 'ping1' }));
    p.push(cframe({ opcode: OP.CONT, fin: false, payload: 'l' }));
    p.push(cframe({ opcode: OP.PONG, payload: '' }));
    p.push(cframe({ opcode: OP.CONT, fin: false, payload: '' }));
    p.push(bytes(cframe({ opcode: OP.PING, payload: 'x' }), cframe({ opcode: OP.CONT, payload: 'o' })));
    p.push(cframe({ opcode: OP.BINARY, fin: false, payload: hex('00') }));
    p.push(cframe({ opcode: OP.CLOSE, payload: hex('03e8') }));
    p.push(cframe({ opcode: OP.CONT, payload: hex('ff') }));
    assert.deepEqual(p.events, [
      ctl(OP.PING, 'ping1'),
      ctl(OP.PONG, ''),
      ctl(OP.PING, 'x'),
      msg('Hello', true),
      ctl(OP.CLOSE, hex('03e8')),
      msg(hex('00ff'), false),
    ]);
  });

  test('control frames of 0 and 125 bytes are fine', () => {
    const p = recordingParser('client');
    p.push(frame({ opcode: OP.PING }), frame({ opcode: OP.PONG, payload: payloadOf(125) }), frame({ opcode: OP.CLOSE, payload: payloadOf(125) }));
    assert.deepEqual(p.events, [ctl(OP.PING), ctl(OP.PONG, payloadOf(125)), ctl(OP.CLOSE, payloadOf(125))]);
  });
});

describe('parser: messages in pieces (onMessageParts)', () => {
  test('a large frame over several pushes arrives as its pieces; in one push it is one buffer', () => {
    const payload = payloadOf(30000);
    const wire = cframe({ opcode: OP.BINARY, payload });
    const seen: { parts: Buffer[]; length: number; isText: boolean }[] = [];
    const whole: Buffer[] = [];
    const p = new FrameParser(
      {
        onMessage: (m) => whole.push(Buffer.from(m)),
        onMessageParts: (parts, length, isText) => seen.push({ parts: parts.map((x) => Buffer.from(x)), length, isText }),
        onControl() {},
        onError(error) {
          throw error;
        },
      },
      { role: 'server' },
    );
    p.push(Buffer.from(wire));
    for (const piece of splitAt(wire, [1, 10, 1000, 20000])) p.push(Buffer.from(piece));
    // Under PARTS_MIN_SIZE, pieces are joined.
    const small = cframe({ opcode: OP.BINARY, payload: payloadOf(PARTS_MIN_SIZE - 1) });
    for (const piece of splitAt(small, [100, 200])) p.push(Buffer.from(piece));
    assert.equal(whole.length, 2);
    assert.ok(whole[0]!.equals(payload));
    assert.ok(whole[1]!.equals(payloadOf(PARTS_MIN_SIZE - 1)));
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.length, 30000);
    assert.equal(seen[0]!.isText, false);
    assert.deepEqual(seen[0]!.parts.map((x) => x.length), [2, 990, 19000, wire.length - 20000]);
    assert.ok(Buffer.concat(seen[0]!.parts).equals(payload));
  });

  test('large fragmented messages arrive as the pieces of all their frames, without empty ones', () => {
    const half = 'é'.repeat(PARTS_MIN_SIZE / 4);
    const pieces: number[][] = [];
    const p = new FrameParser(
      {
        onMessage: (m) => pieces.push([m.length]),
        onMessageParts: (parts) => pieces.push(parts.map((x) => x.length)),
        onControl() {},
        onError(error) {
          throw error;
        },
      },
      { role: 'server' },
    );
    const push = (...frames: Buffer[]): void => {
      for (const f of frames) p.push(f);
    };
    push(
      cframe({ opcode: OP.TEXT, fin: false, payload: half }),
      cframe({ opcode: OP.CONT, fin: false, payload: '' }),
      cframe({ opcode: OP.PING, payload: 'x' }),
      cframe({ opcode: OP.CONT, payload: half }),
    );
    // Small ones, one fragment with bytes in it, an empty fragmented message: one buffer.
    push(cframe({ opcode: OP.TEXT, fin: false, payload: 'ab' }), cframe({ opcode: OP.CONT, payload: 'cd' }));
    push(cframe({ opcode: OP.BINARY, fin: false, payload: '' }), cframe({ opcode: OP.CONT, payload: 'z' }));
    push(cframe({ opcode: OP.BINARY, fin: false, payload: '' }), cframe({ opcode: OP.CONT, payload: '' }));
    assert.deepEqual(pieces, [[PARTS_MIN_SIZE / 2, PARTS_MIN_SIZE / 2], [4], [1], [0]]);
    const q = recordingParser('server', undefined, { parts: true });
    q.push(cframe({ opcode: OP.TEXT, fin: false, payload: half }), cframe({ opcode: OP.CONT, payload: half }));
    assert.deepEqual(q.events, [msg(half + half, true)]);
  });

  test('text in pieces is still validated: bad or truncated UTF-8 fails with 1007', () => {
    const pad = Buffer.alloc(PARTS_MIN_SIZE, 'a');
    for (const bad of [bytes(pad, 'abc', hex('ff'), 'def'), bytes(pad, 'abc', hex('e2 82'))]) {
      const wire = cframe({ opcode: OP.TEXT, payload: bad });
      const p = recordingParser('server', undefined, { parts: true });
      p.push(...splitAt(wire, [3, 8, 5000]));
      assert.deepEqual(p.events, [err('WS_ERR_INVALID_UTF8', 1007)]);
      const q = recordingParser('server', undefined, { parts: true });
      q.push(cframe({ opcode: OP.TEXT, fin: false, payload: bad.subarray(0, 2) }), cframe({ opcode: OP.CONT, payload: bad.subarray(2) }));
      assert.deepEqual(q.events, [err('WS_ERR_INVALID_UTF8', 1007)]);
    }
  });
});

describe('parser: protocol errors (1002)', () => {
  function expectError(role: 'server' | 'client', chunks: Buffer[], code: string, closeCode = PROTOCOL_ERROR, before: ReturnType<typeof msg>[] = []) {
    const p = recordingParser(role);
    p.push(...chunks);
    assert.deepEqual(p.events, [...before, err(code, closeCode)]);
    assert.ok(p.errors[0] instanceof WebSocketError);
    assert.equal(p.parser.isStopped, true);
    return p;
  }

  test('64-bit length with the most significant bit set: WS_ERR_INVALID_LENGTH, from the header alone', () => {
    for (const role of ['server', 'client'] as const) {
      const m = role === 'server' ? 0x80 : 0;
      expectError(role, [hex('82'), Buffer.of(m | 127), hex('80 00 00 00 00 00 00 00')], 'WS_ERR_INVALID_LENGTH');
      expectError(role, [bytes(hex('82'), [m | 127], hex('ff ff ff ff ff ff ff ff'))], 'WS_ERR_INVALID_LENGTH');
      expectError(role, [bytes(hex('02'), [m | 127], hex('80 00 00 00 00 00 00 05 01 02 03 04 05'))], 'WS_ERR_INVALID_LENGTH');
      // Split inside the length; no mask key needed to know.
      expectError(role, [bytes(hex('82'), [m | 127], hex('80 00 00')), hex('00 00 00 00 00')], 'WS_ERR_INVALID_LENGTH');
      expectError(role, [inbound(role, { opcode: OP.BINARY, declaredLength: 2n ** 63n })], 'WS_ERR_INVALID_LENGTH');
      expectError(role, [inbound(role, { opcode: OP.BINARY, declaredLength: 2n ** 64n - 1n, payload: 'abc' })], 'WS_ERR_INVALID_LENGTH');
    }
  });

  test('RSV1, RSV2, RSV3 (no extension negotiated)', () => {
    for (const bit of ['rsv1', 'rsv2', 'rsv3'] as const) {
      expectError('server', [cframe({ opcode: OP.TEXT, payload: 'x', [bit]: true })], 'WS_ERR_UNEXPECTED_RSV');
      expectError('client', [frame({ opcode: OP.BINARY, payload: 'x', [bit]: true })], 'WS_ERR_UNEXPECTED_RSV');
      expectError('server', [cframe({ opcode: OP.PING, [bit]: true })], 'WS_ERR_UNEXPECTED_RSV');
      expectError('server', [cframe({ opcode: OP.TEXT, fin: false, payload: 'a' }), cframe({ opcode: OP.CONT, payload: 'b', [bit]: true })], 'WS_ERR_UNEXPECTED_RSV');
    }
    // With a valid message before it in the same push.
    expectError('server', [bytes(cframe({ opcode: OP.TEXT, payload: 'ok' }), cframe({ opcode: OP.TEXT, payload: 'x', rsv2: true }), cframe({ opcode: OP.TEXT, payload: 'no' }))], 'WS_ERR_UNEXPECTED_RSV', PROTOCOL_ERROR, [msg('ok', true)]);
  });

  test('reserved opcodes 3-7 and 11-15', () => {
    for (const opcode of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
      expectError('server', [cframe({ opcode, payload: 'x' })], 'WS_ERR_INVALID_OPCODE');
      expectError('client', [frame({ opcode })], 'WS_ERR_INVALID_OPCODE');
      expectError('server', [cframe({ opcode, fin: false })], 'WS_ERR_INVALID_OPCODE');
      // Inside a fragmented message too.
      expectError('server', [cframe({ opcode: OP.TEXT, fin: false, payload: 'a' }), cframe({ opcode })], 'WS_ERR_INVALID_OPCODE');
    }
  });

  test('control frames over 125 bytes, caught from the header', () => {
    for (const opcode of [OP.CLOSE, OP.PING, OP.PONG]) {
      expectError('server', [cframe({ opcode, payload: payloadOf(126) })], 'WS_ERR_INVALID_CONTROL_FRAME');
      expectError('client', [frame({ opcode, payload: payloadOf(65536) })], 'WS_ERR_INVALID_CONTROL_FRAME');
      // Only the header (with its 16-bit length) pushed, no payload.
      expectError('client', [frame({ opcode, payload: payloadOf(126) }).subarray(0, 4)], 'WS_ERR_INVALID_CONTROL_FRAME');
    }
  });

  test('control frames with a non-minimal length encoding are judged by the value', () => {
    // Non-minimal encodings are accepted for every frame (as for data frames); what counts
    // for a control frame is that the payload is at most 125 bytes.
    const server = recordingParser('server');
    server.push(cframe({ opcode: OP.PING, payload: 'abc', lengthBits: 16 }), cframe({ opcode: OP.PONG, payload: payloadOf(125), lengthBits: 64 }));
    assert.deepEqual(server.events, [ctl(OP.PING, 'abc'), ctl(OP.PONG, payloadOf(125))]);
    const client = recordingParser('client');
    client.push(frame({ opcode: OP.CLOSE, payload: hex('03e8'), lengthBits: 64 }));
    assert.deepEqual(client.events, [ctl(OP.CLOSE, hex('03e8'))]);
    expectError('server', [cframe({ opcode: OP.PING, payload: payloadOf(126), lengthBits: 16 })], 'WS_ERR_INVALID_CONTROL_FRAME');
    // A huge 64-bit length fails from the header alone.
    expectError('client', [bytes(hex('89'), [127], hex('00 00 00 01 00 00 00 00'))], 'WS_ERR_INVALID_CONTROL_FRAME');
  });

  test('fragmented control frames', () => {
    for (const opcode of [OP.CLOSE, OP.PING, OP.PONG]) {
      expectError('server', [cframe({ opcode, fin: false, payload: 'x' })], 'WS_ERR_INVALID_CONTROL_FRAME');
      expectError('client', [frame({ opcode, fin: false })], 'WS_ERR_INVALID_CONTROL_FRAME');
    }
  });

  test('continuation without a message to continue', () => {
    expectError('server', [cframe({ opcode: OP.CONT, payload: 'x' })], 'WS_ERR_UNEXPECTED_CONTINUATION');
    expectError('server', [cframe({ opcode: OP.CONT, fin: false, payload: 'x' })], 'WS_ERR_UNEXPECTED_CONTINUATION');
    expectError('client', [frame({ opcode: OP.TEXT, payload: 'done' }), frame({ opcode: OP.CONT, payload: 'x' })], 'WS_ERR_UNEXPECTED_CONTINUATION', PROTOCOL_ERROR, [msg('done', true)]);
    expectError('client', [frame({ opcode: OP.TEXT, fin: false, payload: 'a' }), frame({ opcode: OP.CONT, payload: 'b' }), frame({ opcode: OP.CONT })], 'WS_ERR_UNEXPECTED_CONTINUATION', PROTOCOL_ERROR, [msg('ab', true)]);
  });

  test('a new text or binary frame inside a fragmented message', () => {
    for (const first of [OP.TEXT, OP.BINARY]) {
      for (const next of [OP.TEXT, OP.BINARY]) {
        expectError('server', [cframe({ opcode: first, fin: false, payload: 'a' }), cframe({ opcode: next, payload: 'b' })], 'WS_ERR_EXPECTED_CONTINUATION');
        expectError('server', [cframe({ opcode: first, fin: false }), cframe({ opcode: OP.PING }), cframe({ opcode: next, fin: false })], 'WS_ERR_EXPECTED_CONTINUATION', PROTOCOL_ERROR, [ctl(OP.PING)]);
      }
    }
  });

  test('masking: a server needs masked frames, a client refuses them', () => {
    expectError('server', [frame({ opcode: OP.TEXT, payload: 'x' })], 'WS_ERR_EXPECTED_MASK');
    expectError('server', [frame({ opcode: OP.PING })], 'WS_ERR_EXPECTED_MASK');
    expectError('server', [cframe({ opcode: OP.TEXT, fin: false, payload: 'a' }), frame({ opcode: OP.CONT, payload: 'b' })], 'WS_ERR_EXPECTED_MASK');
    expectError('client', [cframe({ opcode: OP.TEXT, payload: 'x' })], 'WS_ERR_UNEXPECTED_MASK');
    expectError('client', [cframe({ opcode: OP.CLOSE })], 'WS_ERR_UNEXPECTED_MASK');
    // Known from the second byte, before any length or key bytes.
    expectError('server', [hex('81 05')], 'WS_ERR_EXPECTED_MASK');
    expectError('client', [hex('81 85')], 'WS_ERR_UNEXPECTED_MASK');
  });

  test('after an error, further pushes emit nothing; stop() stops', () => {
    const p = recordingParser('server');
    p.push(frame({ opcode: OP.TEXT, payload: 'unmasked' }));
    assert.equal(p.events.length, 1);
    p.push(cframe({ opcode: OP.TEXT, payload: 'valid' }), cframe({ opcode: OP.CONT }), cframe({ opcode: OP.PING }));
    p.push(hex('ff ff ff'));
    assert.equal(p.events.length, 1);

    const q = recordingParser('server');
    const f = cframe({ opcode: OP.TEXT, payload: 'hello' });
    q.push(f.subarray(0, 4));
    assert.deepEqual(q.events, [], 'a partial frame gives nothing yet');
    q.parser.stop();
    assert.equal(q.parser.isStopped, true);
    q.push(f.subarray(4), cframe({ opcode: OP.PING }), frame({ opcode: 3 }));
    assert.deepEqual(q.events, []);

    // stop() from inside an event: the rest of the same push is ignored.
    const seen: unknown[] = [];
    const stopper: FrameParser = new FrameParser(
      {
        onMessage: (payload) => {
          seen.push(msg(payload, true));
          stopper.stop();
        },
        onControl: (opcode) => seen.push(ctl(opcode)),
        onError: (error) => seen.push(err(error.code, error.closeCode!)),
      },
      { role: 'server' },
    );
    stopper.push(bytes(cframe({ opcode: OP.TEXT, payload: 'a' }), cframe({ opcode: OP.TEXT, payload: 'b' }), cframe({ opcode: 3 })));
    assert.deepEqual(seen, [msg('a', true)]);
  });

  test('partial headers, partial payloads and open fragmented messages give nothing until complete', () => {
    const p = recordingParser('server');
    const f = cframe({ opcode: OP.TEXT, payload: 'hello' });
    p.push(f.subarray(0, 1));
    assert.deepEqual(p.events, [], 'partial header');
    p.push(f.subarray(1, 8));
    assert.deepEqual(p.events, [], 'partial payload');
    p.push(f.subarray(8));
    assert.deepEqual(p.events, [msg('hello', true)]);
    p.push(cframe({ opcode: OP.BINARY, fin: false, payload: 'a' }));
    assert.deepEqual(p.events, [msg('hello', true)], 'fragmented message open');
    p.push(cframe({ opcode: OP.CONT, payload: 'b' }));
    assert.deepEqual(p.events, [msg('hello', true), msg('ab', false)]);
  });
});

describe('parser: maxMessageSize (1009)', () => {
  test('the default is 64 MiB', () => {
    assert.equal(DEFAULT_MAX_MESSAGE_SIZE, 64 * 1024 * 1024);
    const p = recordingParser('client');
    p.push(frame({ opcode: OP.BINARY, declaredLength: DEFAULT_MAX_MESSAGE_SIZE }).subarray(0, 10));
    assert.deepEqual(p.events, []);
    const q = recordingParser('client');
    q.push(frame({ opcode: OP.BINARY, declaredLength: DEFAULT_MAX_MESSAGE_SIZE + 1 }).subarray(0, 10));
    assert.deepEqual(q.events, [err('WS_ERR_MESSAGE_TOO_BIG', 1009)]);
  });

  test('an oversized frame is refused from its header, before any payload arrives', () => {
    for (const role of ['server', 'client'] as const) {
      for (const [limit, length] of [[10, 11n], [125, 126n], [1024, 65536n], [1024, 2n ** 40n], [1024, 2n ** 53n + 2n], [1024, 2n ** 63n - 1n]] as const) {
        const p = recordingParser(role, limit);
        // Header only (with the mask key for a server): no payload byte pushed.
        const header = inbound(role, { opcode: OP.BINARY, declaredLength: length });
        p.push(header);
        assert.deepEqual(p.events, [err('WS_ERR_MESSAGE_TOO_BIG', 1009)], `${role} limit ${limit} length ${length}`);
        p.push(payloadOf(100));
        assert.equal(p.events.length, 1);
      }
      // For a server, the error comes before the mask key is even there.
      const early = recordingParser('server', 10);
      early.push(hex('82 8b'));
      assert.deepEqual(early.events, [err('WS_ERR_MESSAGE_TOO_BIG', 1009)]);
    }
  });

  test('a message of exactly the limit is accepted, one byte more is not', () => {
    const p = recordingParser('server', 100);
    p.push(cframe({ opcode: OP.BINARY, payload: payloadOf(100) }));
    assert.deepEqual(p.events, [msg(payloadOf(100), false)]);
    const q = recordingParser('server', 100);
    q.push(cframe({ opcode: OP.BINARY, payload: payloadOf(101) }));
    assert.deepEqual(q.events, [err('WS_ERR_MESSAGE_TOO_BIG', 1009)]);
  });

  test('the limit counts across fragments, and is refused at the header of the fragment that crosses it', () => {
    const p = recordingParser('server', 10);
    p.push(cframe({ opcode: OP.TEXT, fin: false, payload: 'abcd' }));
    p.push(cframe({ opcode: OP.CONT, fin: false, payload: 'efg' }));
    p.push(cframe({ opcode: OP.PING, payload: payloadOf(125) })); // control frames do not count
    p.push(cframe({ opcode: OP.CONT, fin: false, payload: 'hij' }));
    assert.deepEqual(p.events, [ctl(OP.PING, payloadOf(125))]);
    p.push(cframe({ opcode: OP.CONT, fin: true, payload: 'k' }).subarray(0, 2));
    assert.deepEqual(p.events, [ctl(OP.PING, payloadOf(125)), err('WS_ERR_MESSAGE_TOO_BIG', 1009)]);

    // Exactly 10 across fragments is fine; the count restarts with the next message.
    const q = recordingParser('server', 10);
    q.push(cframe({ opcode: OP.BINARY, fin: false, payload: payloadOf(6) }), cframe({ opcode: OP.CONT, payload: payloadOf(4) }));
    q.push(cframe({ opcode: OP.BINARY, fin: false, payload: payloadOf(10) }), cframe({ opcode: OP.CONT, payload: '' }));
    assert.deepEqual(q.events, [msg(Buffer.concat([payloadOf(6), payloadOf(4)]), false), msg(payloadOf(10), false)]);
  });
});

describe('parser: maxFragments (1009)', () => {
  /** Counts messages and records errors; the fragments under test are empty. */
  function counting(maxFragments?: number) {
    const seen = { messages: 0, errors: [] as string[] };
    const parser = new FrameParser(
      { onMessage: () => seen.messages++, onControl: () => {}, onError: (error) => seen.errors.push(`${error.code} ${error.closeCode}`) },
      maxFragments === undefined ? { role: 'server' } : { role: 'server', maxFragments },
    );
    return { parser, seen };
  }
  const start = (): Buffer => cframe({ opcode: OP.BINARY, fin: false, payload: '' });
  const middle = (): Buffer => cframe({ opcode: OP.CONT, fin: false, payload: '' });
  const last = (): Buffer => cframe({ opcode: OP.CONT, fin: true, payload: 'z' });

  test('the default is 100,000 frames per message, empty ones counted', () => {
    assert.equal(DEFAULT_MAX_FRAGMENTS, 100_000);
    const ok = counting();
    ok.parser.push(Buffer.concat([start(), ...Array.from({ length: DEFAULT_MAX_FRAGMENTS - 2 }, middle), last()]));
    assert.deepEqual(ok.seen, { messages: 1, errors: [] });
    const over = counting();
    over.parser.push(Buffer.concat([start(), ...Array.from({ length: DEFAULT_MAX_FRAGMENTS - 1 }, middle)]));
    assert.deepEqual(over.seen, { messages: 0, errors: [] });
    // The frame past the limit is refused from its header (its payload never arrives).
    over.parser.push(Buffer.from(last().subarray(0, 2)));
    assert.deepEqual(over.seen, { messages: 0, errors: ['WS_ERR_MESSAGE_TOO_BIG 1009'] });
  });

  test('the count restarts with each message; control frames in between do not count', () => {
    const { parser, seen } = counting(3);
    for (let round = 0; round < 3; round++) {
      parser.push(Buffer.concat([start(), cframe({ opcode: OP.PING, payload: '' }), middle(), cframe({ opcode: OP.PING, payload: '' }), last()]));
    }
    parser.push(cframe({ opcode: OP.TEXT, payload: 'whole' }));
    assert.deepEqual(seen, { messages: 4, errors: [] });
    parser.push(Buffer.concat([start(), middle(), middle(), middle()]));
    assert.deepEqual(seen, { messages: 4, errors: ['WS_ERR_MESSAGE_TOO_BIG 1009'] });
  });

  test('headers split across pushes are counted once', () => {
    const { parser, seen } = counting(3);
    for (const byte of Buffer.concat([start(), middle(), last()])) parser.push(Buffer.from([byte]));
    assert.deepEqual(seen, { messages: 1, errors: [] });
  });
});

describe('parser: UTF-8 of text messages (1007)', () => {
  const SAMPLES = ['κόσμε', '€', '😀', 'a\u0080b\u07ff\u0800\uffff\u{10000}\u{10ffff}z', 'Hello-µ@ßöäüàá-UTF-8!!'];

  test('valid multibyte text split across fragments at every byte position', () => {
    for (const sample of SAMPLES) {
      const data = Buffer.from(sample);
      for (let at = 0; at <= data.length; at++) {
        for (const role of ['server', 'client'] as const) {
          const p = recordingParser(role);
          p.push(inbound(role, { opcode: OP.TEXT, fin: false, payload: data.subarray(0, at) }));
          p.push(inbound(role, { opcode: OP.CONT, payload: data.subarray(at) }));
          assert.deepEqual(p.events, [msg(data, true)], `${sample} at ${at}`);
        }
      }
      // One byte per fragment.
      const p = recordingParser('server');
      p.push(cframe({ opcode: OP.TEXT, fin: false }));
      for (const byte of data) p.push(cframe({ opcode: OP.CONT, fin: false, payload: Buffer.of(byte) }));
      p.push(cframe({ opcode: OP.CONT }));
      assert.deepEqual(p.events, [msg(data, true)], `${sample} byte per fragment`);
    }
  });

  test('valid multibyte text in one frame split across pushes at every position', () => {
    for (const sample of SAMPLES) {
      const data = Buffer.from(sample);
      const f = cframe({ opcode: OP.TEXT, payload: data });
      for (let at = 0; at <= f.length; at++) {
        for (let at2 = at; at2 <= f.length; at2 += 3) {
          const p = recordingParser('server');
          p.push(...splitAt(f, [at, at2]));
          assert.deepEqual(p.events, [msg(data, true)], `${sample} at ${at},${at2}`);
        }
      }
    }
  });

  const INVALID = [
    ['overlong C0 80', 'c080'],
    ['overlong E0 80 80', 'e08080'],
    ['overlong F0 80 80 80', 'f0808080'],
    ['surrogate ED A0 80', 'eda080'],
    ['surrogate ED BF BF', 'edbfbf'],
    ['above U+10FFFF F4 90 80 80', 'f4908080'],
    ['F5', 'f5'], ['F8', 'f8'], ['FE', 'fe'], ['FF', 'ff'],
    ['lone continuation', '80'],
    ['continuation after a complete character', 'c2a080'],
    ['truncated at message end (2 of 3)', 'e0a0'],
    ['truncated at message end (3 of 4)', 'f09f98'],
    ['truncated at message end (1 of 2)', 'c2'],
    ['missing continuation', 'c241'],
  ] as const;

  test('invalid sequences fail with 1007 in one frame, fragmented, and byte by byte', () => {
    for (const [name, h] of INVALID) {
      const data = bytes('ok ', hex(h), ' end');
      const dataAtEnd = bytes('ok ', hex(h));
      for (const d of [data, dataAtEnd]) {
        const whole = recordingParser('server');
        whole.push(cframe({ opcode: OP.TEXT, payload: d }));
        assert.deepEqual(whole.events, [err('WS_ERR_INVALID_UTF8', 1007)], `${name} whole`);

        const client = recordingParser('client');
        client.push(frame({ opcode: OP.TEXT, payload: d }));
        assert.deepEqual(client.events, [err('WS_ERR_INVALID_UTF8', 1007)], `${name} client`);

        for (let at = 0; at <= d.length; at++) {
          const frag = recordingParser('server');
          frag.push(cframe({ opcode: OP.TEXT, fin: false, payload: d.subarray(0, at) }), cframe({ opcode: OP.CONT, payload: d.subarray(at) }));
          assert.deepEqual(frag.events, [err('WS_ERR_INVALID_UTF8', 1007)], `${name} fragmented at ${at}`);
        }
        const byByte = recordingParser('server');
        byByte.push(...splitAt(cframe({ opcode: OP.TEXT, payload: d }), Array.from({ length: d.length + 5 }, (_, i) => i + 1)));
        assert.deepEqual(byByte.events, [err('WS_ERR_INVALID_UTF8', 1007)], `${name} byte by byte`);
      }
    }
  });

  test('one non-ASCII character or bad byte at every position of a whole frame, lengths 2-80', () => {
    // Whole frames are checked while unmasking (ASCII needs nothing more); any byte at or
    // above 0x80, in the byte-wise head, the word-wise middle or the tail, must still be seen.
    for (let length = 2; length <= 80; length++) {
      for (let at = 0; at + 2 <= length; at++) {
        const good = Buffer.alloc(length, 'a');
        good[at] = 0xc3;
        good[at + 1] = 0xa9; // é
        const bad = Buffer.alloc(length, 'a');
        bad[at] = 0xff;
        const p = recordingParser('server');
        p.push(cframe({ opcode: OP.TEXT, payload: good }));
        assert.deepEqual(p.events, [msg(good, true)], `é at ${at} of ${length}`);
        const q = recordingParser('server');
        q.push(cframe({ opcode: OP.TEXT, payload: bad }));
        assert.deepEqual(q.events, [err('WS_ERR_INVALID_UTF8', 1007)], `ff at ${at} of ${length}`);
        const r = recordingParser('server');
        r.push(cframe({ opcode: OP.BINARY, payload: bad }));
        assert.deepEqual(r.events, [msg(bad, false)], `binary ff at ${at} of ${length}`);
      }
    }
  });

  test('invalid UTF-8 in a binary message is fine', () => {
    const p = recordingParser('server');
    p.push(cframe({ opcode: OP.BINARY, payload: hex('c0 80 ff ed a0 80') }));
    p.push(cframe({ opcode: OP.BINARY, fin: false, payload: hex('e0') }), cframe({ opcode: OP.CONT, payload: hex('80') }));
    assert.deepEqual(p.events, [msg(hex('c0 80 ff ed a0 80'), false), msg(hex('e0 80'), false)]);
  });

  test('fail fast: bad UTF-8 in a non-final fragment fails before the final fragment arrives', () => {
    for (const [name, h] of INVALID) {
      if (name.startsWith('truncated')) continue; // only detectable at the end of the message
      const p = recordingParser('server');
      p.push(cframe({ opcode: OP.TEXT, fin: false, payload: 'fine' }));
      assert.deepEqual(p.events, []);
      p.push(cframe({ opcode: OP.CONT, fin: false, payload: bytes('x', hex(h)) }));
      assert.deepEqual(p.events, [err('WS_ERR_INVALID_UTF8', 1007)], name);
      p.push(cframe({ opcode: OP.CONT, payload: 'rest' }));
      assert.equal(p.events.length, 1);
    }
    // Bad bytes split over two non-final fragments: fails on the second.
    const p = recordingParser('server');
    p.push(cframe({ opcode: OP.TEXT, fin: false, payload: hex('ed') }));
    assert.deepEqual(p.events, []);
    p.push(cframe({ opcode: OP.CONT, fin: false, payload: hex('a0') }));
    assert.deepEqual(p.events, [err('WS_ERR_INVALID_UTF8', 1007)]);
  });

  test('fail fast: inside one frame delivered in pieces, fails at the piece that contains the bad byte', () => {
    const payload = bytes(Buffer.alloc(50, 'a'), hex('f4 90'), Buffer.alloc(50, 'b'));
    const f = cframe({ opcode: OP.TEXT, payload });
    const headerLength = 2 + 4;
    const bad = headerLength + 51; // the 0x90 byte
    for (const cut of [headerLength + 10, headerLength + 50, headerLength + 51]) {
      const p = recordingParser('server');
      p.push(f.subarray(0, cut));
      assert.deepEqual(p.events, [], `nothing yet at ${cut}`);
      p.push(f.subarray(cut, bad + 1));
      assert.deepEqual(p.events, [err('WS_ERR_INVALID_UTF8', 1007)], `fails at piece ending at ${bad + 1}`);
    }
    // A frame of a fragmented message, itself in pieces.
    const p = recordingParser('client');
    p.push(frame({ opcode: OP.TEXT, fin: false, payload: 'abc' }));
    const g = frame({ opcode: OP.CONT, fin: false, payload: bytes('xyz', hex('c0'), 'more') });
    p.push(g.subarray(0, 5));
    assert.deepEqual(p.events, []);
    p.push(g.subarray(5, 6));
    assert.deepEqual(p.events, [err('WS_ERR_INVALID_UTF8', 1007)]);
  });

  test('the validator state does not leak from one text message into the next', () => {
    const p = recordingParser('server');
    p.push(cframe({ opcode: OP.TEXT, fin: false, payload: hex('ce') }), cframe({ opcode: OP.CONT, payload: hex('ba') }));
    p.push(cframe({ opcode: OP.TEXT, fin: false, payload: hex('e0') }), cframe({ opcode: OP.CONT, payload: hex('a0 80') }));
    const f = cframe({ opcode: OP.TEXT, payload: 'plain' });
    p.push(f.subarray(0, 7), f.subarray(7));
    p.push(cframe({ opcode: OP.TEXT, payload: hex('ed 9f bf') }));
    assert.deepEqual(p.events, [msg(hex('ceba'), true), msg(hex('e0a080'), true), msg('plain', true), msg(hex('ed9fbf'), true)]);
  });
});

describe('parser: masking', () => {
  test('payloads are unmasked whatever the key and the split', () => {
    const keys = [KEY, hex('00000000'), hex('ffffffff'), hex('a1b2c3d4')];
    const data = payloadOf(300);
    for (const mask of keys) {
      const f = frame({ opcode: OP.BINARY, payload: data, mask });
      for (const cuts of [[], [8], [9], [10], [11], [8, 9, 10, 11, 12], [50, 51, 53, 200]]) {
        const p = recordingParser('server');
        p.push(...splitAt(f, cuts));
        assert.deepEqual(p.events, [msg(data, false)], `key ${mask.toString('hex')} cuts ${cuts}`);
      }
    }
  });
});
