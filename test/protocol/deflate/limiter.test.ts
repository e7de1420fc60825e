import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZlibLimiter, limiterFor, zlibJobsActive } from '../../../src/protocol/deflate/limiter.js';
import { PerMessageDeflate } from '../../../src/protocol/deflate/codec.js';

describe('ZlibLimiter', () => {
  test('runs at most `limit` jobs, the rest in arrival order', () => {
    const limiter = new ZlibLimiter(2);
    const started: number[] = [];
    for (let i = 0; i < 5; i++) limiter.run(() => started.push(i));
    assert.deepEqual(started, [0, 1]);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.queued, 3);
    limiter.release();
    assert.deepEqual(started, [0, 1, 2]);
    limiter.release();
    limiter.release();
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(limiter.active, 2);
    limiter.release();
    limiter.release();
    assert.equal(limiter.active, 0);
    assert.equal(limiter.queued, 0);
  });

  test('one limiter per concurrency value', () => {
    assert.equal(limiterFor(7), limiterFor(7));
    assert.notEqual(limiterFor(7), limiterFor(8));
  });

  test('thousands of connections compressing at once stay within the cap', async () => {
    const concurrency = 4;
    const limiter = limiterFor(concurrency);
    const codecs = Array.from({ length: 2000 }, () => new PerMessageDeflate({
      sendWindowBits: 15, sendNoContextTakeover: true, receiveWindowBits: 15, receiveNoContextTakeover: true,
      threshold: 0, memLevel: 8, level: -1, concurrency,
    }, 1 << 20));
    let peak = 0;
    let sampling = true;
    const sample = (): void => {
      peak = Math.max(peak, limiter.active);
      if (sampling) setImmediate(sample);
    };
    sample();
    const payload = Buffer.from(JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ id: i, name: `n${i}` }))));
    await Promise.all(codecs.map((codec) => new Promise<void>((resolve, reject) => codec.compress(payload, (error) => {
      peak = Math.max(peak, limiter.active);
      if (error) reject(error);
      else resolve();
    }))));
    sampling = false;
    assert.ok(peak >= 1 && peak <= concurrency, `peak ${peak}`);
    assert.equal(limiter.active, 0);
    assert.equal(zlibJobsActive(), 0);
  });
});
