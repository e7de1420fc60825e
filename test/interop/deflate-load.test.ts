// permessage-deflate under hostile and heavy load, over real sockets: a compression bomb with the
// process's memory measured, and thousands of connections compressing at once with the
// process-wide zlib cap holding.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { connect } from '../../src/stream/client.js';
import { AsyncWebSocketApp } from '../../src/event/app.js';
import { limiterFor, zlibJobsStarted } from '../../src/protocol/deflate/limiter.js';
import { startServer, withTimeout, type TestServer } from '../helpers/server.js';
import { frame } from '../protocol/helpers.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(closers.map((close) => close()));
});

/** Read from a raw socket until `predicate(bytes)` holds. */
function readUntil(socket: ReturnType<typeof tcpConnect>, predicate: (bytes: Buffer) => boolean, ms: number): Promise<Buffer> {
  return withTimeout(new Promise((resolve, reject) => {
    let bytes = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      bytes = Buffer.concat([bytes, chunk]);
      if (predicate(bytes)) resolve(bytes);
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(bytes));
  }), ms, 'raw socket');
}

describe('compression bomb', () => {
  test('a 1 MiB message that would inflate to 1 GiB closes with 1009; memory stays near the limit', async () => {
    const limit = 2 * 1024 * 1024;
    const server: TestServer = await startServer(async (stream) => {
      for await (const message of stream) await stream.send(message);
    }, { perMessageDeflate: true, maxMessageSize: limit });
    closers.push(() => server.close());
    // 16 independent copies of 64 MiB of zeros, each compressed from an empty window: one
    // valid deflate stream of about 1 MiB that inflates to 1 GiB.
    const piece = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
    const bomb = Buffer.concat(Array.from({ length: 16 }, () => piece)).subarray(0, -4);
    assert.ok(bomb.length < limit, `${bomb.length} bytes on the wire`);
    const bombFrame = frame({ opcode: 0x2, rsv1: true, payload: bomb, mask: Buffer.from([1, 2, 3, 4]) });

    const socket = tcpConnect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
    );
    const head = await readUntil(socket, (bytes) => bytes.includes('\r\n\r\n'), 5000);
    assert.match(head.toString('latin1'), /Sec-WebSocket-Extensions: permessage-deflate/);
    socket.removeAllListeners('data');

    global.gc?.();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let peakExternal = before.external + before.arrayBuffers;
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peakRss = Math.max(peakRss, now.rss);
      peakExternal = Math.max(peakExternal, now.external + now.arrayBuffers);
    }, 2);
    socket.write(bombFrame);
    const reply = await readUntil(socket, (bytes) => bytes.length >= 4 && (bytes[0]! & 0x0f) === 0x8, 20_000);
    clearInterval(sampler);
    // A close frame with 1009.
    assert.equal(reply[0], 0x88);
    assert.equal(reply.readUInt16BE(2), 1009);
    socket.destroy();
    const grownExternal = peakExternal - (before.external + before.arrayBuffers);
    const grownRss = peakRss - before.rss;
    // The bomb itself (1 MiB on the wire, joined once by the parser) plus at most the limit of
    // inflated bytes and zlib's buffers; never anything like the gigabyte.
    assert.ok(grownExternal < 16 * 1024 * 1024, `external memory grew by ${(grownExternal / 1048576).toFixed(1)} MiB`);
    assert.ok(grownRss < 64 * 1024 * 1024, `RSS grew by ${(grownRss / 1048576).toFixed(1)} MiB`);
  });
});

describe('many connections compressing at once', () => {
  test('2,000 connections echo compressed messages; the server never runs more zlib jobs than its cap', async () => {
    const concurrency = 7;
    const app = new AsyncWebSocketApp(undefined, {
      perMessageDeflate: { threshold: 0, concurrency, serverNoContextTakeover: true, clientNoContextTakeover: true },
    }).withMessageHandler((stream, message) => stream.send(message));
    const { port } = await app.run('127.0.0.1:0');
    closers.push(() => app.close());
    const limiter = limiterFor(concurrency);
    let peak = 0;
    let sampling = true;
    const sample = (): void => {
      peak = Math.max(peak, limiter.active);
      if (sampling) setImmediate(sample);
    };
    sample();
    const count = 2000;
    const streams = [];
    for (let i = 0; i < count; i += 200) {
      streams.push(...await Promise.all(Array.from({ length: 200 }, () => connect(`ws://127.0.0.1:${port}/`, {
        perMessageDeflate: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
      }))));
    }
    const text = (i: number): string => JSON.stringify(Array.from({ length: 80 }, (_, k) => ({ connection: i, k, name: `n${k % 7}` })));
    const started = zlibJobsStarted();
    await Promise.all(streams.map((stream, i) => stream.send(text(i))));
    const echoes = await withTimeout(Promise.all(streams.map((stream) => stream.recv())), 60_000, 'echoes');
    sampling = false;
    echoes.forEach((message, i) => assert.equal(message.text(), text(i)));
    // Each message: compressed by the client, inflated and compressed by the server, inflated
    // by the client.
    assert.equal(zlibJobsStarted() - started, 4 * count);
    assert.ok(peak >= 1 && peak <= concurrency, `peak of ${peak} server zlib jobs at once`);
    assert.equal(limiter.active, 0);
    await Promise.all(streams.map((stream) => stream.close()));
  });
});
