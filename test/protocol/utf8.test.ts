import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { Utf8Validator } from '../../src/protocol/utf8.js';
import { isValidUtf8 } from '../helpers/protocol.js';
import { hex } from './helpers.js';

/**
 * Reference, straight from the RFC 3629 section 4 grammar: for each lead byte the allowed range
 * of the second byte, then plain tails. Returns the index of the first byte after which the
 * prefix can no longer be valid UTF-8 (-1 if none), and whether the input ends on a boundary.
 */
function reference(bytes: Uint8Array): { firstBad: number; complete: boolean } {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    let tails: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (lead <= 0x7f) tails = 0;
    else if (lead >= 0xc2 && lead <= 0xdf) tails = 1;
    else if (lead === 0xe0) (tails = 2), (lo = 0xa0);
    else if ((lead >= 0xe1 && lead <= 0xec) || lead === 0xee || lead === 0xef) tails = 2;
    else if (lead === 0xed) (tails = 2), (hi = 0x9f);
    else if (lead === 0xf0) (tails = 3), (lo = 0x90);
    else if (lead >= 0xf1 && lead <= 0xf3) tails = 3;
    else if (lead === 0xf4) (tails = 3), (hi = 0x8f);
    else return { firstBad: i, complete: false };
    for (let t = 1; t <= tails; t++) {
      if (i + t >= bytes.length) return { firstBad: -1, complete: false };
      const b = bytes[i + t]!;
      const [min, max] = t === 1 ? [lo, hi] : [0x80, 0xbf];
      if (b < min || b > max) return { firstBad: i + t, complete: false };
    }
    i += tails + 1;
  }
  return { firstBad: -1, complete: true };
}

/** Feed `bytes` in pieces ending at `cuts`; return the index of the piece that was refused (-1 if none). */
function feed(validator: Utf8Validator, bytes: Uint8Array, cuts: number[]): number {
  let from = 0;
  const ends = [...cuts, bytes.length];
  for (let p = 0; p < ends.length; p++) {
    const to = ends[p]!;
    if (!validator.push(bytes.subarray(from, to))) return p;
    from = to;
  }
  return -1;
}

/** The piece (by index) that contains byte `index`, given piece ends. */
function pieceOf(index: number, cuts: number[]): number {
  let p = 0;
  while (p < cuts.length && cuts[p]! <= index) p++;
  return p;
}

test('the reference agrees with isUtf8 on a few fixtures (sanity check of the test itself)', () => {
  for (const s of ['', 'a', 'κόσμε', '😀', '\u0000', '\uffff', '\u{10ffff}']) {
    const b = Buffer.from(s);
    assert.deepEqual(reference(b), { firstBad: -1, complete: true });
    assert.equal(isUtf8(b), true);
  }
});

const VALID = [
  '', '00', '7f', 'c280', 'dfbf', 'e0a080', 'ed9fbf', 'ee8080', 'efbfbf', 'efbbbf', 'f0908080', 'f09f9880', 'f48fbfbf',
  'cebae1bdb9cf83cebcceb5', '48656c6c6f2dc2b540c39fc3b6c3a4c3bcc3a0c3a12d5554462d382121',
];

// [hex, index of the byte that makes it invalid (or the length when it is only truncated)]
const INVALID: [string, number][] = [
  ['c080', 0], // overlong NUL (C0 can never start a sequence)
  ['c1bf', 0],
  ['e08080', 1], // overlong 3-byte
  ['e09fbf', 1],
  ['f0808080', 1], // overlong 4-byte
  ['f08fbfbf', 1],
  ['eda080', 1], // surrogate D800
  ['edbfbf', 1], // surrogate DFFF
  ['f4908080', 1], // U+110000
  ['f5', 0], ['f8', 0], ['fc', 0], ['fe', 0], ['ff', 0],
  ['80', 0], ['bf', 0], // lone continuation
  ['41c2', 2], // truncated at the end
  ['e0a0', 2],
  ['f09f98', 3],
  ['c241', 1], // missing continuation
  ['e0a041', 2],
  ['f09f9841', 3],
  ['cebae1bdb9cf83cebcceb5eda080656469746564', 12],
  ['c2808080', 2],
  ['f48fbfbf80', 4],
];

test('valid fixtures: accepted whole, byte by byte, and at every 2-way split', () => {
  for (const h of VALID) {
    const b = hex(h);
    assert.equal(isValidUtf8(b), true, h);
    const whole = new Utf8Validator();
    assert.equal(whole.push(b), true, h);
    assert.equal(whole.complete, true, h);
    const byByte = new Utf8Validator();
    for (let i = 0; i < b.length; i++) {
      assert.equal(byByte.push(b.subarray(i, i + 1)), true, `${h} byte ${i}`);
      assert.equal(byByte.complete, reference(b.subarray(0, i + 1)).complete, `${h} complete after byte ${i}`);
    }
    for (let cut = 0; cut <= b.length; cut++) {
      const v = new Utf8Validator();
      assert.equal(v.push(b, 0, cut) && v.push(b, cut, b.length), true, `${h} cut ${cut}`);
      assert.equal(v.complete, true);
    }
  }
});

test('invalid fixtures: refused at exactly the byte that makes them invalid', () => {
  for (const [h, badAt] of INVALID) {
    const b = hex(h);
    assert.equal(isValidUtf8(b), false, h);
    assert.equal(reference(b).firstBad, badAt === b.length ? -1 : badAt, `reference ${h}`);
    const byByte = new Utf8Validator();
    let refusedAt = -1;
    for (let i = 0; i < b.length; i++) {
      if (!byByte.push(b.subarray(i, i + 1))) {
        refusedAt = i;
        break;
      }
    }
    if (badAt === b.length) {
      // Only truncated: every byte is accepted, but the text does not end on a boundary.
      assert.equal(refusedAt, -1, h);
      assert.equal(byByte.complete, false, h);
    } else {
      assert.equal(refusedAt, badAt, h);
    }
    const whole = new Utf8Validator();
    assert.equal(whole.push(b) && whole.complete, false, h);
    // Split at every point: the piece holding the bad byte is the one refused.
    for (let cut = 1; cut < b.length; cut++) {
      const v = new Utf8Validator();
      const refused = feed(v, b, [cut]);
      if (badAt === b.length) assert.equal(refused === -1 && !v.complete, true, `${h} cut ${cut}`);
      else assert.equal(refused, badAt < cut ? 0 : 1, `${h} cut ${cut}`);
    }
  }
});

test('push honours start and end, and reset() starts over', () => {
  const buf = hex('ff e0 a0 80 ff');
  const v = new Utf8Validator();
  assert.equal(v.push(buf, 1, 3), true);
  assert.equal(v.complete, false);
  assert.equal(v.push(buf, 3, 4), true);
  assert.equal(v.complete, true);
  assert.equal(v.push(buf, 2, 3), false); // a lone continuation byte
  v.reset();
  assert.equal(v.complete, true);
  assert.equal(v.push(buf, 1, 2), true);
  v.reset();
  assert.equal(v.complete, true, 'reset clears a pending sequence');
  assert.equal(v.push(hex('41')), true, 'and its narrowed range');
  v.reset();
  assert.equal(v.push(hex('ed')), true);
  v.reset();
  assert.equal(v.push(hex('e0 bf bf')), true, 'ED narrowing does not survive reset');
  assert.equal(v.push(buf, 2, 2), true, 'an empty range is fine');
});

// Bytes that exercise every branch: ASCII, leads of each length (with their narrowed
// successors), continuation bytes at the range edges, and bytes that never occur.
const interesting = fc.constantFrom(
  0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef,
  0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
);
const utf8Text = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => new Uint8Array(Buffer.from(s)));
const corrupted = fc
  .tuple(utf8Text, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('replace', 'insert', 'truncate'))
  .map(([b, at, byte, how]) => {
    const i = b.length === 0 ? 0 : at % b.length;
    if (how === 'replace' && b.length > 0) {
      const out = new Uint8Array(b);
      out[i] = byte;
      return out;
    }
    if (how === 'truncate') return b.subarray(0, i);
    return new Uint8Array([...b.subarray(0, i), byte, ...b.subarray(i)]);
  });
const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 48 }),
  fc.array(interesting, { maxLength: 24 }).map((a) => new Uint8Array(a)),
  utf8Text,
  corrupted,
);
const withCuts = anyBytes.chain((b) =>
  fc.tuple(fc.constant(b), fc.uniqueArray(fc.integer({ min: 0, max: b.length }), { maxLength: 8 }).map((c) => c.sort((x, y) => x - y))),
);

test('property: agrees with isUtf8 and refuses at the earliest bad byte, whatever the split', () => {
  fc.assert(
    fc.property(withCuts, ([data, cuts]) => {
      const ref = reference(data);
      assert.equal(ref.firstBad === -1 && ref.complete, isUtf8(data), 'reference vs isUtf8');
      const v = new Utf8Validator();
      const refused = feed(v, data, cuts);
      if (ref.firstBad === -1) {
        assert.equal(refused, -1);
        assert.equal(v.complete, ref.complete);
        assert.equal(v.complete, isUtf8(data), 'final verdict vs isUtf8');
      } else {
        assert.equal(refused, pieceOf(ref.firstBad, cuts), `bad byte ${ref.firstBad}`);
      }
    }),
    { numRuns: 4000 },
  );
});

test('property: one byte at a time, refused exactly at the first bad byte', () => {
  fc.assert(
    fc.property(anyBytes, (data) => {
      const ref = reference(data);
      const v = new Utf8Validator();
      let refusedAt = -1;
      for (let i = 0; i < data.length; i++) {
        if (!v.push(data, i, i + 1)) {
          refusedAt = i;
          break;
        }
        assert.equal(v.complete, reference(data.subarray(0, i + 1)).complete);
      }
      assert.equal(refusedAt, ref.firstBad);
      if (refusedAt === -1) assert.equal(v.complete, isUtf8(data));
    }),
    { numRuns: 2000 },
  );
});
