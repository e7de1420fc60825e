import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, deflateRawSync } from 'node:zlib';
import { WebSocketError } from '../../../src/protocol/errors.js';
import { PerMessageDeflate, pooledContexts } from '../../../src/protocol/deflate/codec.js';
import { limiterFor } from '../../../src/protocol/deflate/limiter.js';
import type { DeflateAgreement } from '../../../src/protocol/deflate/negotiate.js';
import { hex, toHex } from '../helpers.js';

function agreement(overrides: Partial<DeflateAgreement> = {}): DeflateAgreement {
  return {
    sendWindowBits: 15,
    sendNoContextTakeover: false,
    receiveWindowBits: 15,
    receiveNoContextTakeover: false,
    threshold: 0,
    memLevel: 8,
    level: -1,
    concurrency: 10,
    ...overrides,
  };
}

function compress(codec: PerMessageDeflate, data: Buffer | Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => codec.compress(data, (error, payload) => (error ? reject(error) : resolve(payload!))));
}

/** Decompress a message given as frames; resolves with its bytes, rejects with the error. */
async function decompress(codec: PerMessageDeflate, frames: Buffer[], isText = false): Promise<Buffer> {
  let result: Buffer | null = null;
  for (let i = 0; i < frames.length; i++) {
    const fin = i === frames.length - 1;
    const message = await new Promise<Buffer[] | null>((resolve, reject) =>
      codec.decompress(frames[i]!, fin, isText, (error, chunks) => (error ? reject(error) : resolve(chunks))),
    );
    assert.equal(message !== null, fin, 'a message only after its last frame');
    if (message !== null) result = Buffer.concat(message);
  }
  return result!;
}

function isError(code: string, closeCode: number) {
  return (error: unknown) => error instanceof WebSocketError && error.code === code && error.closeCode === closeCode;
}

describe('RFC 7692 section 7.2.3 examples', () => {
  test('7.2.3.1: "Hello" in one compressed block, both ways', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    assert.equal(toHex(await compress(codec, Buffer.from('Hello'))), 'f248cdc9c90700');
    assert.equal((await decompress(codec, [hex('f2 48 cd c9 c9 07 00')], true)).toString(), 'Hello');
  });

  test('7.2.3.2: sharing the LZ77 window (context takeover), both ways', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    assert.equal(toHex(await compress(codec, Buffer.from('Hello'))), 'f248cdc9c90700');
    assert.equal(toHex(await compress(codec, Buffer.from('Hello'))), 'f200110000');
    assert.equal((await decompress(codec, [hex('f2 48 cd c9 c9 07 00')])).toString(), 'Hello');
    assert.equal((await decompress(codec, [hex('f2 00 11 00 00')])).toString(), 'Hello');
  });

  test('7.2.3.2 without context takeover: every message starts from an empty window', async () => {
    const codec = new PerMessageDeflate(agreement({ sendNoContextTakeover: true }), 1024);
    assert.equal(toHex(await compress(codec, Buffer.from('Hello'))), 'f248cdc9c90700');
    assert.equal(toHex(await compress(codec, Buffer.from('Hello'))), 'f248cdc9c90700');
  });

  test('7.2.3.3: a block with no compression', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    assert.equal((await decompress(codec, [hex('00 05 00 fa ff 48 65 6c 6c 6f 00')])).toString(), 'Hello');
  });

  test('7.2.3.4: a block with BFINAL set; the next message starts a new stream', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    assert.equal((await decompress(codec, [hex('f3 48 cd c9 c9 07 00 00')])).toString(), 'Hello');
    assert.equal((await decompress(codec, [hex('f3 48 cd c9 c9 07 00')])).toString(), 'Hello');
    assert.equal((await decompress(codec, [hex('f2 48 cd c9 c9 07 00')])).toString(), 'Hello');
  });

  test('7.2.3.5: two blocks in one message', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    assert.equal((await decompress(codec, [hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00')])).toString(), 'Hello');
  });

  test('an empty message compresses to 00 and back (the empty-block trailer)', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    assert.equal(toHex(await compress(codec, Buffer.alloc(0))), '00');
    assert.equal((await decompress(codec, [hex('00')])).length, 0);
    // A compressed message with an empty payload is an empty message too.
    assert.equal((await decompress(codec, [Buffer.alloc(0)])).length, 0);
  });

  test('fragments: the compressed bytes split anywhere, and empty fragments', async () => {
    const text = 'Hello, fragmented world! '.repeat(40);
    const sender = new PerMessageDeflate(agreement(), 1 << 20);
    const compressed = await compress(sender, Buffer.from(text));
    for (const cuts of [[1], [3, 4, 5], [0, compressed.length], [Math.floor(compressed.length / 2)]]) {
      const frames: Buffer[] = [];
      let at = 0;
      for (const cut of cuts) {
        frames.push(compressed.subarray(at, cut));
        at = cut;
      }
      frames.push(compressed.subarray(at));
      const receiver = new PerMessageDeflate(agreement(), 1 << 20);
      assert.equal((await decompress(receiver, frames, true)).toString(), text);
    }
  });
});

describe('round trips', () => {
  for (const bits of [9, 10, 11, 12, 13, 14, 15]) {
    for (const noTakeover of [false, true]) {
      test(`window ${bits}, ${noTakeover ? 'no ' : ''}context takeover`, async () => {
        const sender = new PerMessageDeflate(agreement({ sendWindowBits: bits, sendNoContextTakeover: noTakeover }), 1 << 20);
        const receiver = new PerMessageDeflate(agreement({ receiveWindowBits: bits, receiveNoContextTakeover: noTakeover }), 1 << 20);
        for (let i = 0; i < 20; i++) {
          const message = Buffer.from(JSON.stringify({ i, items: Array.from({ length: 30 * i }, (_, k) => ({ k, v: `value-${k * i}` })) }));
          const payload = await compress(sender, message);
          assert.deepEqual(await decompress(receiver, [payload], true), message);
        }
      });
    }
  }

  test('pieces of a message are compressed as one', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    const receiver = new PerMessageDeflate(agreement(), 1024);
    const payload = await compress(codec, [Buffer.from('Hel'), Buffer.from('lo')]);
    assert.equal((await decompress(receiver, [payload])).toString(), 'Hello');
  });

  test('callbacks come in call order, whatever the sizes', async () => {
    const codec = new PerMessageDeflate(agreement(), 1 << 24);
    const order: number[] = [];
    const sizes = [5_000_000, 10, 100_000, 1, 2_000_000];
    await Promise.all(sizes.map((size, i) => new Promise<void>((resolve) => codec.compress(Buffer.alloc(size, i), () => {
      order.push(i);
      resolve();
    }))));
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
  });

  test('contexts without takeover are pooled, not kept per connection', async () => {
    const codecs = Array.from({ length: 50 }, () => new PerMessageDeflate(agreement({ sendNoContextTakeover: true, sendWindowBits: 11 }), 1024));
    await Promise.all(codecs.map((codec) => compress(codec, Buffer.from('pooled pooled pooled'))));
    // At most `concurrency` (10) contexts of this kind are kept for reuse.
    assert.ok(pooledContexts() <= 10 * 3, `pooled ${pooledContexts()}`);
  });

  test('shouldCompress follows the threshold and a window of 0 (never)', () => {
    const codec = new PerMessageDeflate(agreement({ threshold: 1024 }), 1024);
    assert.equal(codec.shouldCompress(1023), false);
    assert.equal(codec.shouldCompress(1024), true);
    assert.equal(new PerMessageDeflate(agreement({ sendWindowBits: 0 }), 1024).shouldCompress(1 << 20), false);
  });
});

describe('bounded decompression', () => {
  test('a bomb stops at the limit with 1009, holding no more than the limit', async () => {
    // 64 KiB that inflate to 64 MiB.
    const bomb = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const before = process.memoryUsage().arrayBuffers;
    const codec = new PerMessageDeflate(agreement(), 1024 * 1024);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - before)), 1);
    await assert.rejects(decompress(codec, [bomb]), isError('WS_ERR_MESSAGE_TOO_BIG', 1009));
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    assert.ok(peak < 8 * 1024 * 1024, `external memory grew by ${peak} bytes`);
  });

  test('the limit counts across the frames of a message', async () => {
    const sender = new PerMessageDeflate(agreement(), 1 << 20);
    const payload = await compress(sender, Buffer.alloc(3000, 'a'));
    const receiver = new PerMessageDeflate(agreement(), 2999);
    const half = Math.floor(payload.length / 2);
    await assert.rejects(decompress(receiver, [payload.subarray(0, half), payload.subarray(half)]), isError('WS_ERR_MESSAGE_TOO_BIG', 1009));
    const exact = new PerMessageDeflate(agreement(), 3000);
    assert.equal((await decompress(exact, [payload])).length, 3000);
  });

  test('invalid UTF-8 fails fast, before the message ends', async () => {
    const bad = Buffer.concat([Buffer.from([0xff]), Buffer.alloc(1 << 20, 'a')]);
    const payload = await compress(new PerMessageDeflate(agreement(), 1 << 21), bad);
    await assert.rejects(decompress(new PerMessageDeflate(agreement(), 1 << 21), [payload], true), isError('WS_ERR_INVALID_UTF8', 1007));
    // Binary is not validated.
    assert.equal((await decompress(new PerMessageDeflate(agreement(), 1 << 21), [payload], false)).length, bad.length);
  });

  test('text ending inside a UTF-8 sequence fails with 1007', async () => {
    const payload = await compress(new PerMessageDeflate(agreement(), 1024), Buffer.from([0x61, 0xe2, 0x82]));
    await assert.rejects(decompress(new PerMessageDeflate(agreement(), 1024), [payload], true), isError('WS_ERR_INVALID_UTF8', 1007));
  });

  test('UTF-8 split across frames and zlib chunks is valid', async () => {
    const text = '€ünï😀'.repeat(20000);
    const payload = await compress(new PerMessageDeflate(agreement(), 1 << 21), Buffer.from(text));
    const frames = [payload.subarray(0, 7), payload.subarray(7, 100), payload.subarray(100)];
    assert.equal((await decompress(new PerMessageDeflate(agreement(), 1 << 21), frames, true)).toString(), text);
  });

  test('garbage fails with 1007, never a throw', async () => {
    await assert.rejects(decompress(new PerMessageDeflate(agreement(), 1024), [hex('ff ff ff ff')]), isError('WS_ERR_COMPRESSION', 1007));
    // Data after the end of a deflate stream.
    await assert.rejects(decompress(new PerMessageDeflate(agreement(), 1024), [hex('f3 48 cd c9 c9 07 00 12 34')]), isError('WS_ERR_COMPRESSION', 1007));
  });

  test('after close, callbacks are not called and contexts are released', async () => {
    const codec = new PerMessageDeflate(agreement(), 1024);
    let called = false;
    codec.compress(Buffer.alloc(100_000), () => (called = true));
    codec.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(called, false);
    assert.equal(limiterFor(10).active, 0);
  });
});
