// Floods against `humphrey-ws echo --max-message-size 1048576` (both modes, plain and --cert):
// fragment floods (the fragment limit is generous, empty fragments count), frames that arrive
// one byte per 100 ms, and a message over the size limit. Memory bound: see flood.ts.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertBounded, closeCode, flood, MAX_MESSAGE_SIZE, watchPeak } from './flood.js';
import { closeFrame, frame, OP, Peer } from './peer.js';
import { sleep, startEcho, survives, VARIANTS, type EchoServer } from './server.js';

/** The fragment limit promised by default (at least this many fragments are accepted). */
const FRAGMENTS_ACCEPTED = 100_000;

for (const variant of VARIANTS) {
  describe(`floods against humphrey-ws echo (${variant.name})`, () => {
    let server: EchoServer;
    before(async () => {
      server = await startEcho(variant.mode, variant.tls, ['--max-message-size', String(MAX_MESSAGE_SIZE)]);
    });
    after(() => server.stop());

    it(`a message of ${FRAGMENTS_ACCEPTED} fragments, empty ones among them, is echoed intact`, async () => {
      await survives(server, async () => {
        const peer = await Peer.open(server.target);
        const payload = Buffer.alloc(FRAGMENTS_ACCEPTED / 2);
        for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
        // Alternating empty and one-byte fragments, the first one starting the message.
        const frames: Buffer[] = [];
        for (let i = 0; i < FRAGMENTS_ACCEPTED; i++) {
          const piece = i % 2 === 0 ? payload.subarray(0, 0) : payload.subarray(i >> 1, (i >> 1) + 1);
          frames.push(frame(i === 0 ? OP.BINARY : OP.CONT, piece, i === FRAGMENTS_ACCEPTED - 1));
        }
        peer.write(Buffer.concat(frames));
        const echoed = await peer.nextMessage(30_000);
        assert.equal(echoed.isText, false);
        assert.ok(echoed.data.equals(payload), 'the echo is the message, byte for byte');
        assert.equal(await peer.closeCleanly(), 1000);
      });
    });

    for (const [kind, piece] of [['empty', Buffer.alloc(0)], ['one-byte', Buffer.from('x')]] as const) {
      it(`a never-ending flood of ${kind} fragments is closed with 1009, memory bounded`, async () => {
        await survives(server, async () => {
          const peer = await Peer.open(server.target);
          const rssBefore = server.rss();
          const peak = watchPeak(server);
          peer.write(frame(OP.BINARY, piece, false));
          // 4 million fragments, 1000 per write; the server must give up long before.
          const batch = Buffer.concat(Array.from({ length: 1000 }, () => frame(OP.CONT, piece, false)));
          const code = closeCode(peer);
          await flood(peer, batch, batch.length * 4000);
          assert.equal(await code, 1009);
          assertBounded(peak.stop() - rssBefore);
          peer.socket.destroy();
        });
      });
    }

    it('frames that arrive one byte per 100 ms are assembled and echoed', async () => {
      await survives(server, async () => {
        const peer = await Peer.open(server.target);
        const bytes = Buffer.concat([
          frame(OP.TEXT, Buffer.from('slow')),
          frame(OP.BINARY, Buffer.from([1, 2]), false),
          frame(OP.PING, Buffer.from('p')),
          frame(OP.CONT, Buffer.from([3]), true),
        ]);
        for (const byte of bytes) {
          peer.write(Buffer.from([byte]));
          await sleep(100);
        }
        assert.equal((await peer.nextMessage()).data.toString(), 'slow');
        const pong = await peer.next();
        assert.deepEqual([pong.type, pong.type === 'pong' && pong.data.toString()], ['pong', 'p']);
        assert.deepEqual((await peer.nextMessage()).data, Buffer.from([1, 2, 3]));
        assert.equal(await peer.closeCleanly(), 1000);
      });
    });

    it('a message over the size limit is closed with 1009 before it is buffered', async () => {
      await survives(server, async () => {
        const peer = await Peer.open(server.target);
        const code = closeCode(peer);
        // Declares 64 MiB and sends it slowly: the server must refuse from the header.
        const header = frame(OP.BINARY, Buffer.alloc(0)).subarray(0, 2);
        header[1] = 0x80 | 127;
        const length = Buffer.alloc(8);
        length.writeBigUInt64BE(64n * 1024n * 1024n);
        peer.write(Buffer.concat([header, length, Buffer.from([1, 2, 3, 4]), Buffer.alloc(1000)]));
        assert.equal(await code, 1009);
        peer.write(closeFrame(1000));
        await peer.closedWithin();
      });
    });
  });
}
