// toBuffer: every byte form a Node user holds becomes a Buffer over the same memory; anything
// else is a typed error.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toBuffer, isBlob } from '../../src/protocol/bytes.js';
import { WebSocketError } from '../../src/protocol/errors.js';

test('toBuffer takes Buffers, TypedArrays, DataViews, ArrayBuffers and SharedArrayBuffers without copying', () => {
  const backing = new ArrayBuffer(16);
  new Uint8Array(backing).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  const cases: [unknown, number[]][] = [
    [Buffer.from([9, 8]), [9, 8]],
    [new Uint8Array(backing, 2, 3), [3, 4, 5]],
    [new Uint16Array(backing, 4, 1), [5, 6]],
    [new Float64Array(backing, 8, 1), [9, 10, 11, 12, 13, 14, 15, 16]],
    [new DataView(backing, 14, 2), [15, 16]],
    [backing.slice(0, 2), [1, 2]],
  ];
  for (const [input, bytes] of cases) assert.deepEqual([...toBuffer(input)], bytes);
  // Same memory: writing through the Buffer is seen through the original view.
  const view = new Uint8Array(backing, 0, 4);
  toBuffer(view)[0] = 99;
  assert.equal(view[0], 99);
  const shared = new SharedArrayBuffer(4);
  new Uint8Array(shared)[3] = 7;
  assert.deepEqual([...toBuffer(shared)], [0, 0, 0, 7]);
  assert.deepEqual([...toBuffer(new Uint8Array(shared, 2, 2))], [0, 7]);
});

test('toBuffer refuses anything else with WS_ERR_INVALID_ARGUMENT', () => {
  for (const bad of [42, null, undefined, {}, [1, 2], true, Symbol('x'), () => 1, new Blob(['x'])]) {
    assert.throws(() => toBuffer(bad), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
  }
});

test('isBlob recognises Blobs and Files only', () => {
  assert.equal(isBlob(new Blob(['a'])), true);
  assert.equal(isBlob(new File(['a'], 'a.txt')), true);
  assert.equal(isBlob(Buffer.from('a')), false);
  assert.equal(isBlob('a'), false);
});
