import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiveQueue } from '../../src/util/queue.js';

test('items come out in the order they went in, across growth and wrap-around', () => {
  const queue = new ReceiveQueue<number>();
  let next = 0;
  let expected = 0;
  // Uneven pushes and shifts so the head wraps around at every capacity.
  for (let round = 0; round < 200; round++) {
    for (let i = 0; i < (round % 7) + 1; i++) queue.push(next++, 1, Infinity);
    for (let i = 0; i < (round % 5) + 1 && queue.length > 0; i++) assert.equal(queue.shift(), expected++);
  }
  while (queue.length > 0) assert.equal(queue.shift(), expected++);
  assert.equal(expected, next);
  assert.equal(queue.shift(), undefined);
  assert.equal(queue.bytes, 0);
});

test('a standing backlog of k items over a million pushes keeps O(k) slots', () => {
  for (const k of [1, 10, 1000]) {
    const queue = new ReceiveQueue<object>();
    const item = {};
    for (let i = 0; i < k; i++) queue.push(item, 10, Infinity);
    let largest = queue.capacity;
    for (let i = 0; i < 1_000_000; i++) {
      queue.push(item, 10, Infinity);
      queue.shift();
      if (queue.capacity > largest) largest = queue.capacity;
    }
    assert.equal(queue.length, k);
    assert.equal(queue.bytes, 10 * k);
    // Capacities are powers of two of at least 8: at most twice what k needs.
    assert.ok(largest <= Math.max(8, 2 * k), `k=${k}: capacity reached ${largest}`);
  }
});

test('the capacity shrinks again once a burst has been taken', () => {
  const queue = new ReceiveQueue<number>();
  for (let i = 0; i < 100_000; i++) queue.push(i, 1, Infinity);
  assert.ok(queue.capacity >= 100_000);
  while (queue.length > 3) queue.shift();
  assert.ok(queue.capacity <= 16, `capacity ${queue.capacity} after the burst`);
  assert.deepEqual([queue.shift(), queue.shift(), queue.shift()], [99_997, 99_998, 99_999]);
});

test('the byte bound: push says when to stop reading, resumeDue when to read again (at half)', () => {
  const queue = new ReceiveQueue<string>();
  const limit = 100;
  assert.equal(queue.push('a', 60, limit), false);
  assert.equal(queue.push('b', 40, limit), false, 'at the limit is not over it');
  assert.equal(queue.push('c', 30, limit), true, 'over the limit: stop reading');
  assert.equal(queue.overLimit, true);
  assert.equal(queue.push('d', 30, limit), false, 'said once, not on every push');
  assert.equal(queue.bytes, 160);
  queue.shift(); // 100 left
  assert.equal(queue.resumeDue(limit), false);
  queue.shift(); // 60 left
  assert.equal(queue.resumeDue(limit), false, 'above half the limit');
  queue.shift(); // 30 left
  assert.equal(queue.resumeDue(limit), true, 'back at half: read again');
  assert.equal(queue.resumeDue(limit), false, 'said once');
  assert.equal(queue.overLimit, false);
  assert.equal(queue.push('e', 100, limit), true, 'over again after resuming');
});

test('items of size 0 (markers) are queued in order and do not count', () => {
  const queue = new ReceiveQueue<string | null>();
  queue.push('m', 5, 10);
  queue.push(null, 0, 10);
  assert.equal(queue.bytes, 5);
  assert.equal(queue.length, 2);
  assert.equal(queue.shift(), 'm');
  assert.equal(queue.shift(), null);
  assert.equal(queue.length, 0);
});
