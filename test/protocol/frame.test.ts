import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CloseCode,
  COPY_THRESHOLD,
  encodeClosePayload,
  encodeFrame,
  encodeShared,
  headerSize,
  isValidCloseCode,
  MAX_HEADER_SIZE,
  Opcode,
  SharedFrame,
  writeHeader,
} from '../../src/protocol/frame.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import { frame, hex, KEY, referenceMask, toHex } from './helpers.js';

function payloadOf(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

test('opcodes and close codes have their RFC 6455 values', () => {
  assert.deepEqual(Opcode, { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 });
  assert.equal(CloseCode.Normal, 1000);
  assert.equal(CloseCode.ProtocolError, 1002);
  assert.equal(CloseCode.NoStatus, 1005);
  assert.equal(CloseCode.Abnormal, 1006);
  assert.equal(CloseCode.InvalidPayload, 1007);
  assert.equal(CloseCode.MessageTooBig, 1009);
  assert.equal(CloseCode.InternalError, 1011);
  assert.equal(MAX_HEADER_SIZE, 14);
});

test('encodeFrame: unmasked headers at every length boundary are byte-exact', () => {
  const cases: [number, string][] = [
    [0, '8100'],
    [1, '8101'],
    [125, '817d'],
    [126, '817e007e'],
    [127, '817e007f'],
    [65535, '817effff'],
    [65536, '817f0000000000010000'],
    [65537, '817f0000000000010001'],
    [1 << 20, '817f0000000000100000'],
  ];
  for (const [length, header] of cases) {
    const payload = payloadOf(length);
    const frames = encodeFrame(Opcode.Text, payload);
    const whole = Buffer.concat(frames);
    assert.equal(toHex(whole.subarray(0, header.length / 2)), header, `length ${length}`);
    assert.equal(whole.length, header.length / 2 + length, `length ${length}`);
    assert.ok(whole.subarray(header.length / 2).equals(payload), `payload of length ${length}`);
    assert.equal(headerSize(length, false), header.length / 2);
  }
});

test('encodeFrame: masked headers carry the mask bit and key, payload masked byte-wise', () => {
  const cases: [number, string][] = [
    [0, '8280'],
    [125, '82fd'],
    [126, '82fe007e'],
    [65535, '82feffff'],
    [65536, '82ff0000000000010000'],
  ];
  for (const [length, header] of cases) {
    const payload = payloadOf(length);
    const before = Buffer.from(payload);
    const frames = encodeFrame(Opcode.Binary, payload, { maskKey: KEY });
    assert.equal(frames.length, 1, 'a masked frame is always one buffer');
    const whole = frames[0]!;
    const h = header.length / 2;
    assert.equal(toHex(whole.subarray(0, h + 4)), header + toHex(KEY), `length ${length}`);
    assert.ok(whole.subarray(h + 4).equals(referenceMask(payload, KEY)), `masked payload of length ${length}`);
    assert.ok(payload.equals(before), 'the payload is not modified');
    assert.equal(headerSize(length, true), h + 4);
    // Same bytes as the independent fixture builder.
    assert.ok(whole.equals(frame({ opcode: 2, payload, mask: KEY })));
  }
});

test('encodeFrame: fin and rsv1 bits, control opcodes', () => {
  assert.equal(toHex(encodeFrame(Opcode.Text, Buffer.from('hi'), { fin: false })[0]!), '01026869');
  assert.equal(toHex(encodeFrame(Opcode.Continuation, Buffer.from('hi'), { fin: true })[0]!), '80026869');
  assert.equal(toHex(encodeFrame(Opcode.Text, Buffer.from('hi'), { rsv1: true })[0]!), 'c1026869');
  assert.equal(toHex(encodeFrame(Opcode.Binary, Buffer.alloc(0), { fin: false, rsv1: true })[0]!), '4200');
  assert.equal(toHex(encodeFrame(Opcode.Ping, Buffer.from('p'))[0]!), '890170');
  assert.equal(toHex(encodeFrame(Opcode.Pong, Buffer.alloc(0))[0]!), '8a00');
  assert.equal(toHex(encodeFrame(Opcode.Close, hex('03e8'))[0]!), '880203e8');
  // RFC 6455 5.7 examples.
  assert.equal(toHex(encodeFrame(Opcode.Text, Buffer.from('Hello'))[0]!), '810548656c6c6f');
  assert.equal(
    toHex(encodeFrame(Opcode.Text, Buffer.from('Hello'), { maskKey: hex('37fa213d') })[0]!),
    '818537fa213d7f9f4d5158',
  );
  assert.equal(toHex(encodeFrame(Opcode.Text, Buffer.from('Hel'), { fin: false })[0]!), '010348656c');
  assert.equal(toHex(encodeFrame(Opcode.Continuation, Buffer.from('lo'))[0]!), '80026c6f');
  assert.equal(toHex(encodeFrame(Opcode.Ping, Buffer.from('Hello'))[0]!), '890548656c6c6f');
  assert.equal(
    toHex(encodeFrame(Opcode.Pong, Buffer.from('Hello'), { maskKey: hex('37fa213d') })[0]!),
    '8a8537fa213d7f9f4d5158',
  );
});

test('encodeFrame: small unmasked payloads are copied into one buffer, large ones are not copied', () => {
  const small = payloadOf(COPY_THRESHOLD);
  const smallFrames = encodeFrame(Opcode.Binary, small);
  assert.equal(smallFrames.length, 1);
  assert.equal(smallFrames[0]!.length, 4 + COPY_THRESHOLD);

  const large = payloadOf(COPY_THRESHOLD + 1);
  const largeFrames = encodeFrame(Opcode.Binary, large);
  assert.equal(largeFrames.length, 2);
  assert.equal(toHex(largeFrames[0]!), '827e' + (COPY_THRESHOLD + 1).toString(16).padStart(4, '0'));
  assert.equal(largeFrames[1], large, 'the payload buffer itself is passed through');

  // A plain Uint8Array at an odd offset is wrapped, not copied, and keeps its window.
  const backing = new Uint8Array(COPY_THRESHOLD + 10);
  backing.set(payloadOf(COPY_THRESHOLD + 5), 3);
  const view = backing.subarray(3, 3 + COPY_THRESHOLD + 5);
  const viewFrames = encodeFrame(Opcode.Binary, view);
  assert.equal(viewFrames.length, 2);
  assert.ok(Buffer.isBuffer(viewFrames[1]));
  assert.equal(viewFrames[1]!.buffer, backing.buffer);
  assert.equal(viewFrames[1]!.byteOffset, 3);
  assert.ok(viewFrames[1]!.equals(payloadOf(COPY_THRESHOLD + 5)));
});

test('writeHeader: 64-bit lengths above 2^32 are written in network order', () => {
  const target = Buffer.alloc(16, 0xee);
  const end = writeHeader(target, 1, Opcode.Binary, 2 ** 32 + 5, true, false, undefined);
  assert.equal(end, 11);
  assert.equal(toHex(target), 'ee827f0000000100000005eeeeeeeeee');
  const target2 = Buffer.alloc(14);
  const end2 = writeHeader(target2, 0, Opcode.Binary, 2 ** 40 + 0x010203, false, true, hex('01020304'));
  assert.equal(end2, 14);
  assert.equal(toHex(target2), '42ff000001000001020301020304');
});

test('isValidCloseCode: exactly 1000-1003, 1007-1014 and 3000-4999', () => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
  const invalid = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];
  for (const code of valid) assert.equal(isValidCloseCode(code), true, `${code}`);
  for (const code of invalid) assert.equal(isValidCloseCode(code), false, `${code}`);
  for (let code = 0; code <= 0xffff; code++) {
    const expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
    if (isValidCloseCode(code) !== expected) assert.fail(`code ${code}`);
  }
});

test('encodeClosePayload: code in network order then the UTF-8 reason', () => {
  assert.equal(encodeClosePayload(undefined).length, 0);
  assert.equal(toHex(encodeClosePayload(1000)), '03e8');
  assert.equal(toHex(encodeClosePayload(1000, 'bye')), '03e8627965');
  assert.equal(toHex(encodeClosePayload(4999, 'κ')), '1387ceba');
  assert.equal(toHex(encodeClosePayload(3000, '😀')), '0bb8f09f9880');
});

test('encodeShared: one complete unmasked frame, its payload and opcode checked first', () => {
  assert.equal(toHex(encodeShared(Opcode.Text, Buffer.from('Hello')).bytes), '810548656c6c6f');
  assert.equal(toHex(encodeShared(Opcode.Ping, Buffer.alloc(0)).bytes), '8900');
  const large = Buffer.alloc(70000, 5);
  const big = encodeShared(Opcode.Binary, large);
  assert.equal(big.bytes.length, 10 + 70000, 'header and payload in one buffer');
  assert.equal(toHex(big.bytes.subarray(0, 10)), '827f0000000000011170');
  assert.ok(big.bytes.subarray(10).equals(large));
  assert.equal(big.isControl, false);
  assert.equal(encodeShared(Opcode.Pong, Buffer.from('p')).isControl, true);
  const refused = (run: () => unknown): void => {
    assert.throws(run, (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
  };
  refused(() => encodeShared(Opcode.Close, Buffer.alloc(0)));
  refused(() => encodeShared(Opcode.Continuation, Buffer.from('x')));
  refused(() => encodeShared(Opcode.Ping, Buffer.alloc(126)));
  refused(() => encodeShared(Opcode.Text, 'text' as unknown as Uint8Array));
  refused(() => encodeShared(Opcode.Binary, new ArrayBuffer(8) as unknown as Uint8Array));
  assert.throws(() => new SharedFrame(Symbol('other'), Opcode.Text, Buffer.from('8100', 'hex')), TypeError);
});
