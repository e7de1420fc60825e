// Property-based tests of the protocol core (fast-check), bounded so the file runs in seconds:
// 1. any valid frame stream, split anywhere, gives exactly the events of the whole stream;
// 2. garbage never throws out of the core, ends in at most one error with 1002/1007/1009,
//    and never holds more than the message size limit;
// 3. masking is its own inverse and matches the byte-wise definition.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { maskInto } from '../../src/protocol/mask.js';
import { MAX_HEADER_SIZE } from '../../src/protocol/frame.js';
import type { FrameParser } from '../../src/protocol/parser.js';
import {
  ctl,
  frame,
  msg,
  OP,
  recordingConnection,
  recordingParser,
  referenceMask,
  splitAt,
  type ConnectionEvent,
  type ParserEvent,
} from './helpers.js';

type Role = 'server' | 'client';

interface WireFrame {
  opcode: number;
  fin: boolean;
  payload: Uint8Array;
  lengthBits: 7 | 16 | 64 | undefined;
  key: Uint8Array;
}

const keyArb = fc.uint8Array({ minLength: 4, maxLength: 4 });
const encodingArb = fc.constantFrom<7 | 16 | 64 | undefined>(undefined, undefined, 16, 64);
const controlArb = fc.record({
  opcode: fc.constantFrom<number>(OP.PING, OP.PONG),
  payload: fc.oneof(fc.uint8Array({ maxLength: 125 }), fc.string({ maxLength: 30 }).map((s) => new Uint8Array(Buffer.from(s).subarray(0, 125)))),
  key: keyArb,
});
const textArb = fc.string({ unit: 'binary', maxLength: 60 }).map((s) => new Uint8Array(Buffer.from(s)));
const messageArb = fc.record({
  text: fc.boolean(),
  binary: fc.uint8Array({ maxLength: 300 }),
  textBytes: textArb,
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  interleaved: fc.array(fc.array(controlArb, { maxLength: 2 }), { minLength: 5, maxLength: 5 }),
  encodings: fc.array(encodingArb, { minLength: 5, maxLength: 5 }),
  key: keyArb,
});
const itemArb = fc.oneof({ arbitrary: messageArb, weight: 3 }, { arbitrary: controlArb, weight: 1 });
const closeArb = fc.option(
  fc.record({ code: fc.constantFrom(1000, 1001, 1011, 3000, 4999), reason: fc.string({ maxLength: 20 }), key: keyArb }),
);
const streamArb = fc.record({ items: fc.array(itemArb, { maxLength: 6 }), close: closeArb });

type Stream = typeof streamArb extends fc.Arbitrary<infer T> ? T : never;

/** The frames of a stream and the parser events it must produce, computed from the model. */
function build(stream: Stream): { frames: WireFrame[]; expected: ParserEvent[] } {
  const frames: WireFrame[] = [];
  const expected: ParserEvent[] = [];
  const control = (c: { opcode: number; payload: Uint8Array; key: Uint8Array }) => {
    frames.push({ opcode: c.opcode, fin: true, payload: c.payload, lengthBits: undefined, key: c.key });
    expected.push(ctl(c.opcode, c.payload));
  };
  for (const item of stream.items) {
    if (!('text' in item)) {
      control(item);
      continue;
    }
    const payload: Uint8Array = item.text ? item.textBytes : item.binary;
    const cuts = [...new Set<number>(item.cuts.map((c: number) => c % (payload.length + 1)))].sort((a, b) => a - b);
    const pieces = splitAt(payload, cuts);
    pieces.forEach((piece, i) => {
      const opcode = i === 0 ? (item.text ? OP.TEXT : OP.BINARY) : OP.CONT;
      const key = Uint8Array.from(item.key, (b: number) => b ^ i);
      frames.push({ opcode, fin: i === pieces.length - 1, payload: piece, lengthBits: item.encodings[i], key });
      if (i < pieces.length - 1) for (const c of item.interleaved[i]) control(c);
    });
    expected.push(msg(payload, item.text));
  }
  if (stream.close) {
    const p = Buffer.alloc(2 + Buffer.byteLength(stream.close.reason));
    p.writeUInt16BE(stream.close.code, 0);
    p.write(stream.close.reason, 2);
    control({ opcode: OP.CLOSE, payload: p.subarray(0, 125), key: stream.close.key });
  }
  return { frames, expected };
}

function encode(frames: WireFrame[], role: Role): Buffer {
  return Buffer.concat(
    frames.map((f) =>
      frame({ opcode: f.opcode, fin: f.fin, payload: f.payload, lengthBits: f.lengthBits, mask: role === 'server' ? f.key : null }),
    ),
  );
}

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });
function cutsFor(length: number, raw: number[]): number[] {
  return [...new Set(raw.map((c) => c % (length + 1)))].sort((a, b) => a - b);
}

test('property: a valid frame stream split at arbitrary points gives exactly the events of the whole', () => {
  fc.assert(
    fc.property(streamArb, fc.constantFrom<Role>('server', 'client'), cutsArb, (stream, role, rawCuts) => {
      const { frames, expected } = build(stream);
      const wire = encode(frames, role);

      const whole = recordingParser(role);
      whole.push(wire);
      assert.deepEqual(whole.events, expected);

      const split = recordingParser(role);
      split.push(...splitAt(wire, cutsFor(wire.length, rawCuts)));
      assert.deepEqual(split.events, expected);
      // Nothing is left half-parsed: a ping after the stream is parsed alike by both.
      const probe = frame({ opcode: OP.PING, payload: 'probe', mask: role === 'server' ? Uint8Array.of(1, 2, 3, 4) : null });
      whole.push(Buffer.from(probe));
      split.push(Buffer.from(probe));
      assert.deepEqual(split.events, whole.events);

      // The same for an owner that takes messages in pieces.
      const inPieces = recordingParser(role, undefined, { parts: true });
      inPieces.push(...splitAt(wire, cutsFor(wire.length, rawCuts)));
      assert.deepEqual(inPieces.events, expected);

      // One byte at a time as the most extreme split (only for short streams, to stay fast).
      if (wire.length < 400) {
        const bytewise = recordingParser(role);
        for (let i = 0; i < wire.length; i++) bytewise.push(wire.subarray(i, i + 1));
        assert.deepEqual(bytewise.events, expected);
      }
    }),
    { numRuns: 400 },
  );
});

test('property: a Connection gives the same events and writes for a valid stream whole or split', () => {
  fc.assert(
    fc.property(streamArb, cutsArb, (stream, rawCuts) => {
      const { frames } = build(stream);
      const wire = encode(frames, 'server');
      const whole = recordingConnection('server');
      whole.receive(wire);
      const split = recordingConnection('server');
      split.receive(...splitAt(wire, cutsFor(wire.length, rawCuts)));
      assert.deepEqual(split.events, whole.events);
      const closes = whole.events.filter((e) => e.type === 'close');
      assert.equal(closes.length, stream.close ? 1 : 0);
      assert.equal(whole.events.filter((e) => e.type === 'close' && e.error !== undefined).length, 0);
    }),
    { numRuns: 200 },
  );
});

test('property: large frames (16- and 64-bit lengths) split anywhere', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 65000, max: 70000 }),
      fc.constantFrom<Role>('server', 'client'),
      keyArb,
      fc.array(fc.nat(), { maxLength: 6 }),
      (length, role, key, rawCuts) => {
        const payload = Buffer.alloc(length);
        for (let i = 0; i < length; i++) payload[i] = (i * 13) & 0xff;
        const wire = frame({ opcode: OP.BINARY, payload, mask: role === 'server' ? key : null });
        const p = recordingParser(role);
        p.push(...splitAt(wire, cutsFor(wire.length, rawCuts)));
        assert.deepEqual(p.events, [msg(payload, false)]);
        const q = recordingParser(role, undefined, { parts: true });
        q.push(...splitAt(wire, cutsFor(wire.length, rawCuts)));
        assert.deepEqual(q.events, [msg(payload, false)]);
      },
    ),
    { numRuns: 20 },
  );
});

// ---- garbage -------------------------------------------------------------------------------------

const LIMIT = 1024;
const ALLOWED_ERROR_CODES = new Set([1002, 1007, 1009]);

/** Bytes the parser holds on to (any Buffer or array of Buffers among its fields). */
function retainedBytes(parser: FrameParser): number {
  let total = 0;
  for (const value of Object.values(parser as unknown as Record<string, unknown>)) {
    if (Buffer.isBuffer(value)) total += value.length;
    else if (Array.isArray(value)) for (const v of value) if (Buffer.isBuffer(v)) total += v.length;
  }
  return total;
}

/** Garbage that often looks like frames: plausible first bytes, the role's mask bit, any lengths. */
function frameishArb(role: Role) {
  return fc
    .record({
      b0: fc.oneof(
        { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
        { arbitrary: fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 15 })).map(([fin, op]) => (fin ? 0x80 : 0) | op), weight: 4 },
      ),
      mask: fc.oneof({ arbitrary: fc.constant(role === 'server'), weight: 9 }, { arbitrary: fc.boolean(), weight: 1 }),
      len: fc.oneof(fc.integer({ min: 0, max: 127 }), fc.constantFrom(0, 1, 2, 125, 126, 127)),
      ext: fc.uint8Array({ minLength: 0, maxLength: 12 }),
      body: fc.uint8Array({ maxLength: 40 }),
    })
    .map(({ b0, mask, len, ext, body }) => Buffer.concat([Buffer.of(b0, (mask ? 0x80 : 0) | len), ext, body]));
}

/** Messages around the size limit: one big frame, or fragments that cross it. */
function oversizedArb(role: Role) {
  const mask = (key: Uint8Array) => (role === 'server' ? key : null);
  return fc.oneof(
    // A header declaring about the limit, and some (maybe all) of its payload.
    fc.tuple(fc.integer({ min: LIMIT - 8, max: LIMIT + 8 }), fc.integer({ min: 0, max: 2 * LIMIT }), keyArb).map(([declared, sent, key]) =>
      Buffer.concat([frame({ opcode: OP.BINARY, declaredLength: declared, mask: mask(key) }), Buffer.alloc(Math.min(sent, declared), 0x61)]),
    ),
    fc.tuple(fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 5 }), fc.boolean(), keyArb).map(([sizes, text, key]) =>
      Buffer.concat(
        sizes.map((size, i) =>
          frame({ opcode: i === 0 ? (text ? OP.TEXT : OP.BINARY) : OP.CONT, fin: i === sizes.length - 1, payload: Buffer.alloc(size, 0x62), mask: mask(key) }),
        ),
      ),
    ),
  );
}

function garbageArb(role: Role) {
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.array(frameishArb(role), { maxLength: 8 }).map((parts) => Buffer.concat(parts)),
    oversizedArb(role),
    // A valid stream, then garbage; or cut short with garbage spliced in.
    fc.tuple(streamArb, fc.uint8Array({ maxLength: 100 }), fc.nat()).map(([stream, tail, at]) => {
      const wire = encode(build(stream).frames, role);
      const cut = at % (wire.length + 1);
      return at % 2 === 0 ? Buffer.concat([wire, tail]) : Buffer.concat([wire.subarray(0, cut), tail, wire.subarray(cut)]);
    }),
    // A valid text message (maybe fragmented) with bytes flipped.
    fc.tuple(textArb, keyArb, fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 })).map(([text, key, at, flips]) => {
      const cut = at % (text.length + 1);
      const wire = Buffer.concat([
        frame({ opcode: OP.TEXT, fin: false, payload: text.subarray(0, cut), mask: role === 'server' ? key : null }),
        frame({ opcode: OP.CONT, payload: text.subarray(cut), mask: role === 'server' ? key : null }),
      ]);
      for (const [where, x] of flips) wire[where % wire.length] ^= x;
      return wire;
    }),
  );
}
const roleAndGarbageArb = fc.constantFrom<Role>('server', 'client').chain((role) => fc.tuple(fc.constant(role), garbageArb(role)));

test('property: garbage never throws, ends in at most one error with 1002/1007/1009, stays within the limit', () => {
  fc.assert(
    fc.property(roleAndGarbageArb, cutsArb, fc.boolean(), ([role, garbage], rawCuts, parts) => {
      const p = recordingParser(role, LIMIT, { parts });
      for (const piece of splitAt(garbage, cutsFor(garbage.length, rawCuts))) {
        p.parser.push(piece); // must not throw
        assert.ok(retainedBytes(p.parser) <= LIMIT + MAX_HEADER_SIZE, `retained ${retainedBytes(p.parser)}`);
      }
      const errorAt = p.events.findIndex((e) => e.type === 'error');
      if (errorAt >= 0) {
        assert.equal(errorAt, p.events.length - 1, 'nothing after the error');
        const e = p.events[errorAt] as Extract<ParserEvent, { type: 'error' }>;
        assert.ok(ALLOWED_ERROR_CODES.has(e.closeCode!), `close code ${e.closeCode}`);
        assert.match(e.code, /^WS_ERR_/);
        assert.equal(p.parser.isStopped, true);
      }
      for (const e of p.events) {
        if (e.type === 'message') assert.ok(e.data.length / 2 <= LIMIT);
        if (e.type === 'control') assert.ok(e.data.length / 2 <= 125);
        if (e.type === 'message' && e.text) assert.ok(isUtf8(Buffer.from(e.data, 'hex')), 'text is valid UTF-8');
      }
      // The same bytes whole give the same events: garbage handling does not depend on the split.
      const whole = recordingParser(role, LIMIT);
      whole.parser.push(Buffer.from(garbage));
      assert.deepEqual(whole.events, p.events);
    }),
    { numRuns: 1500 },
  );
});

test('property: a Connection fed garbage never throws and closes at most once with a legal code', () => {
  fc.assert(
    fc.property(roleAndGarbageArb, cutsArb, ([role, garbage], rawCuts) => {
      const c = recordingConnection(role, LIMIT);
      c.receive(...splitAt(garbage, cutsFor(garbage.length, rawCuts)));
      c.conn.transportClosed();
      const closes = c.events.filter((e) => e.type === 'close') as Extract<ConnectionEvent, { type: 'close' }>[];
      assert.equal(closes.length, 1, 'onClose exactly once');
      const close = closes[0]!;
      const closeAt = c.events.indexOf(close);
      assert.equal(closeAt, c.events.length - 1, 'nothing after onClose');
      if (close.error === undefined) {
        // A close frame from the peer: a code it may send, or 1005 for none.
        assert.ok(close.code === 1005 || (close.code >= 1000 && close.code <= 4999), `${close.code}`);
      } else if (close.error === 'WS_ERR_CONNECTION_LOST') {
        assert.equal(close.code, 1006);
      } else {
        assert.ok(ALLOWED_ERROR_CODES.has(close.code), `${close.error} -> ${close.code}`);
      }
      for (const e of c.events) if (e.type === 'message') assert.ok(e.data.length / 2 <= LIMIT);
      // At most one close frame was written, and it is the last write.
      const writes = c.written;
      const closeWrites = writes.filter((w) => (w[0]! & 0x0f) === OP.CLOSE);
      assert.ok(closeWrites.length <= 1);
      if (closeWrites.length === 1) assert.equal(writes[writes.length - 1], closeWrites[0]);
    }),
    { numRuns: 1000 },
  );
});

// ---- masking --------------------------------------------------------------------------------------

test('property: masking twice restores the data and matches the byte-wise definition', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      keyArb,
      fc.integer({ min: 0, max: 7 }),
      fc.integer({ min: 0, max: 7 }),
      (data, key, sourceShift, targetShift) => {
        const source = new Uint8Array(data.length + 8).subarray(sourceShift, sourceShift + data.length);
        source.set(data);
        const target = new Uint8Array(data.length + 8).subarray(targetShift, targetShift + data.length);
        maskInto(source, 0, target, 0, data.length, key);
        assert.ok(Buffer.from(target).equals(referenceMask(data, key)));
        assert.ok(Buffer.from(source).equals(Buffer.from(data)), 'source untouched');
        maskInto(target, 0, target, 0, data.length, key);
        assert.ok(Buffer.from(target).equals(Buffer.from(data)), 'in-place unmask restores');
      },
    ),
    { numRuns: 1000 },
  );
});
