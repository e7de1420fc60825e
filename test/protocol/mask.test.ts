import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { maskInto, unmaskAscii } from '../../src/protocol/mask.js';
import { maskInPlace } from '../helpers/protocol.js';
import { hex, referenceMask, toHex } from './helpers.js';

const KEYS = [hex('37fa213d'), hex('00000000'), hex('ffffffff'), hex('01020304'), hex('80ff7f00')];

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 151 + seed * 17 + 3) & 0xff;
  return out;
}

/** A view of `length` bytes starting at `address & 7` within a fresh ArrayBuffer, filled with `fill`. */
function at(address: number, length: number, fill = 0xcc): Uint8Array {
  const backing = new Uint8Array(address + length + 8).fill(fill);
  return backing.subarray(address, address + length);
}

test('RFC 6455 5.7 example: "Hello" with key 37 fa 21 3d', () => {
  const data = Buffer.from('Hello');
  maskInPlace(data, hex('37fa213d'));
  assert.equal(toHex(data), '7f9f4d5158');
  maskInPlace(data, hex('37fa213d'));
  assert.equal(data.toString(), 'Hello');
});

test('maskInto equals byte-wise masking for lengths 0..100 at every source/target alignment', () => {
  for (const key of KEYS) {
    for (let length = 0; length <= 100; length++) {
      const data = pattern(length, length);
      const expected = referenceMask(data, key);
      for (let sa = 0; sa < 8; sa++) {
        const source = at(sa, length);
        source.set(data);
        for (let ta = 0; ta < 8; ta++) {
          const target = at(ta, length + 4);
          maskInto(source, 0, target, 2, length, key);
          if (!Buffer.from(target.subarray(2, 2 + length)).equals(expected)) {
            assert.fail(`key ${toHex(key)} length ${length} source@${sa} target@${ta}+2`);
          }
          // Bytes around the range untouched.
          assert.equal(target[0], 0xcc);
          assert.equal(target[1], 0xcc);
          assert.equal(target[2 + length], 0xcc);
          // The source is not modified when target is another buffer.
          if (!Buffer.from(source).equals(Buffer.from(data))) assert.fail('source modified');
        }
      }
    }
  }
});

test('maskInto with offsets into both buffers (Buffer subarrays at odd offsets)', () => {
  const key = KEYS[0]!;
  for (let length = 0; length <= 100; length++) {
    for (let off = 0; off < 8; off++) {
      const pool = Buffer.alloc(length + 32, 0x55);
      const data = pattern(length, off);
      pool.set(data, off + 1);
      const source = pool.subarray(1); // byteOffset 1 within its pool
      const target = Buffer.alloc(length + 16, 0xaa).subarray(3);
      maskInto(source, off, target, off + 2, length, key);
      assert.equal(toHex(target.subarray(off + 2, off + 2 + length)), toHex(referenceMask(data, key)), `length ${length} off ${off}`);
      assert.equal(target[off + 1], 0xaa);
      assert.equal(target[off + 2 + length], 0xaa);
    }
  }
});

test('maskInPlace (same buffer, same offset) at every alignment, lengths 0..100', () => {
  for (const key of KEYS) {
    for (let length = 0; length <= 100; length++) {
      const data = pattern(length, 9);
      const expected = referenceMask(data, key);
      for (let a = 0; a < 8; a++) {
        const view = at(a, length);
        view.set(data);
        maskInPlace(view, key);
        if (!Buffer.from(view).equals(expected)) assert.fail(`key ${toHex(key)} length ${length} at ${a}`);
        assert.equal(view.buffer.byteLength > a + length ? new Uint8Array(view.buffer)[a + length] : 0xcc, 0xcc);
        maskInPlace(view, key);
        if (!Buffer.from(view).equals(Buffer.from(data))) assert.fail(`round trip length ${length} at ${a}`);
      }
    }
  }
});

test('a key that is itself a view at an odd offset works', () => {
  const keyPool = Buffer.alloc(16);
  keyPool.set(hex('37fa213d'), 5);
  const key = keyPool.subarray(5, 9);
  for (const length of [3, 31, 32, 33, 64, 99]) {
    const data = pattern(length, 1);
    const target = at(1, length);
    maskInto(data, 0, target, 0, length, key);
    assert.equal(toHex(target), toHex(referenceMask(data, hex('37fa213d'))));
  }
});

test('large buffers at every alignment match the reference', () => {
  const key = KEYS[4]!;
  for (const length of [65536, 65537, 1 << 20, (1 << 20) + 3]) {
    const data = randomBytes(length);
    const expected = referenceMask(data, key);
    for (let sa = 0; sa < 4; sa++) {
      for (let ta = 0; ta < 4; ta++) {
        const source = at(sa, length);
        source.set(data);
        const target = at(ta, length);
        maskInto(source, 0, target, 0, length, key);
        assert.ok(Buffer.from(target).equals(expected), `length ${length} source@${sa} target@${ta}`);
      }
      const inPlace = at(sa, length);
      inPlace.set(data);
      maskInPlace(inPlace, key);
      assert.ok(Buffer.from(inPlace).equals(expected), `in place length ${length} at ${sa}`);
    }
  }
});

test('ranges of one ArrayBuffer and of others in turn (the word view is reused per buffer)', () => {
  const key = KEYS[0]!;
  const chunks = [Buffer.alloc(4096), Buffer.alloc(300), Buffer.alloc(4096 + 3).subarray(3), new Uint8Array(512 * 1024)];
  for (const chunk of chunks) chunk.set(pattern(chunk.length, chunk.length));
  const originals = chunks.map((chunk) => Uint8Array.from(chunk));
  for (let round = 0; round < 3; round++) {
    for (let c = 0; c < chunks.length; c++) {
      const chunk = chunks[c]!;
      // Frames of all sizes across the chunk, masked one after another.
      let offset = 0;
      for (let length = 1; offset + length <= chunk.length && length < 200; length += 7) {
        maskInto(chunk, offset, chunk, offset, length, key);
        assert.equal(
          toHex(chunk.subarray(offset, offset + length)),
          toHex(referenceMask(originals[c]!.subarray(offset, offset + length), key)),
          `chunk ${c} round ${round} offset ${offset} length ${length}`,
        );
        maskInto(chunk, offset, chunk, offset, length, key);
        // The same range through unmaskAscii (which keeps the view itself), masking it back.
        const unmasked = referenceMask(originals[c]!.subarray(offset, offset + length), key);
        assert.equal(unmaskAscii(chunk, offset, length, key), unmasked.every((byte) => byte < 0x80));
        assert.equal(
          toHex(chunk.subarray(offset, offset + length)),
          toHex(referenceMask(originals[c]!.subarray(offset, offset + length), key)),
          `unmaskAscii chunk ${c} round ${round} offset ${offset} length ${length}`,
        );
        maskInto(chunk, offset, chunk, offset, length, key);
        offset += length + (length & 3);
      }
      assert.ok(Buffer.from(chunk).equals(Buffer.from(originals[c]!)), `chunk ${c} restored`);
    }
  }
});

test('unmaskAscii unmasks like maskInto and reports whether every byte is below 0x80', () => {
  for (const key of KEYS) {
    for (let length = 0; length <= 70; length++) {
      for (let a = 0; a < 4; a++) {
        const ascii = Buffer.alloc(length, 'x');
        const masked = at(a, length);
        masked.set(referenceMask(ascii, key));
        assert.equal(unmaskAscii(masked, 0, length, key), true, `ascii length ${length} at ${a}`);
        assert.ok(Buffer.from(masked).equals(ascii));
        for (let high = 0; high < length; high++) {
          const data = Buffer.alloc(length, 'x');
          data[high] = 0x80 | high;
          const view = at(a, length + 2).subarray(1, 1 + length);
          view.set(referenceMask(data, key));
          assert.equal(unmaskAscii(view, 0, length, key), false, `byte ${high} of ${length} at ${a}`);
          assert.ok(Buffer.from(view).equals(data), `unmasked ${high} of ${length} at ${a}`);
        }
      }
    }
  }
});
