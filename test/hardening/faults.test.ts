// Peers that vanish or misbehave after the handshake, against `humphrey-ws echo` (both modes,
// plain and --cert): resets mid-frame, mid-close and during large transfers in either
// direction, close storms, half-open closes, and connection churn. After each, the server must be alive, serve a fresh client, and hold no more file
// descriptors than before.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { closeFrame, frame, OP, Peer, type ServerEvent } from './peer.js';
import { sleep, startEcho, survives, VARIANTS, type EchoServer } from './server.js';

/** Every event until the TCP connection ends (the last ones a server sends). */
async function rest(peer: Peer, timeoutMs = 10_000): Promise<ServerEvent[]> {
  const events: ServerEvent[] = [];
  for (;;) {
    try {
      events.push(await peer.next(timeoutMs));
    } catch (error) {
      if (peer.socket.destroyed) return events;
      throw error;
    }
  }
}

for (const variant of VARIANTS) {
  describe(`faults against humphrey-ws echo (${variant.name})`, () => {
    let server: EchoServer;
    before(async () => {
      server = await startEcho(variant.mode, variant.tls);
    });
    after(() => server.stop());

    it('resets mid-frame: inside a header, inside a payload, between fragments', async () => {
      await survives(server, async () => {
        const cuts: Buffer[] = [
          frame(OP.BINARY, Buffer.alloc(100_000, 1)).subarray(0, 3),
          frame(OP.BINARY, Buffer.alloc(100_000, 1)).subarray(0, 50_000),
          Buffer.concat([frame(OP.TEXT, Buffer.from('first'), false), frame(OP.CONT, Buffer.from(' and'), false)]),
        ];
        for (const bytes of cuts) {
          const peer = await Peer.open(server.target);
          peer.write(bytes);
          await sleep(20);
          peer.reset();
        }
      });
    });

    it('resets mid-close: after our close, after the server answered it, instead of answering the server', async () => {
      await survives(server, async () => {
        const early = await Peer.open(server.target);
        early.write(closeFrame(1000));
        early.reset();

        const answered = await Peer.open(server.target);
        answered.write(closeFrame(1000));
        assert.equal(await answered.nextClose(), 1000);
        answered.reset();

        // An unmasked frame makes the server close with 1002; we reset instead of answering.
        const failed = await Peer.open(server.target);
        failed.write(frame(OP.TEXT, Buffer.from('unmasked'), true, false));
        assert.equal(await failed.nextClose(), 1002);
        failed.reset();
      });
    });

    it('a client that resets halfway through sending a 32 MiB message', async () => {
      await survives(server, async () => {
        const peer = await Peer.open(server.target);
        const message = frame(OP.BINARY, randomBytes(32 * 1024 * 1024));
        let sent = 0;
        while (sent < message.length / 2) {
          const piece = message.subarray(sent, sent + 1024 * 1024);
          sent += piece.length;
          if (!peer.write(piece)) await new Promise((resolve) => peer.socket.once('drain', resolve));
        }
        peer.reset();
      });
    });

    it('a client that resets while the server sends it a 16 MiB echo', async () => {
      await survives(server, async () => {
        for (const pauseFirst of [true, false]) {
          const peer = await Peer.open(server.target);
          if (pauseFirst) peer.socket.pause();
          const payload = randomBytes(16 * 1024 * 1024);
          peer.sendBinary(payload);
          // Wait until the echo is on its way: part of it has arrived, or (paused) the server
          // has had the time to read the message and start writing.
          if (pauseFirst) await sleep(500);
          else while (peer.receivedDataBytes === 0) await sleep(5);
          peer.reset();
        }
      });
    });

    it('a close storm: 200 clients close at once, and one sends close, data and close again', async () => {
      await survives(server, async () => {
        const peers = await Promise.all(Array.from({ length: 200 }, () => Peer.open(server.target)));
        const codes = await Promise.all(peers.map((peer) => peer.closeCleanly(1000, 30_000)));
        assert.deepEqual(new Set(codes), new Set([1000]));

        const noisy = await Peer.open(server.target);
        noisy.write(Buffer.concat([closeFrame(1000), frame(OP.TEXT, Buffer.from('after close')), frame(OP.PING), closeFrame(1001)]));
        const events = await rest(noisy);
        assert.deepEqual(events.map((event) => event.type), ['close'], 'one close frame, nothing after it');
      });
    });

    it('half-open closes: close then TCP end, and a TCP end without a close', async () => {
      await survives(server, async () => {
        const polite = await Peer.open(server.target);
        polite.sendText('before the end');
        polite.socket.end(closeFrame(1000));
        const events = await rest(polite);
        assert.deepEqual(events.map((event) => event.type), ['message', 'close'], 'the echo, then the close reply');
        assert.equal(events[1]!.type === 'close' && events[1]!.code, 1000);

        const abrupt = await Peer.open(server.target);
        abrupt.socket.end();
        await abrupt.closedWithin();
      });
    });

    it('connection churn: 1000 connections that echo and then close, reset or end', async () => {
      await survives(server, async () => {
        for (let wave = 0; wave < 10; wave++) {
          await Promise.all(
            Array.from({ length: 100 }, async (_, i) => {
              const peer = await Peer.open(server.target, { timeoutMs: 30_000 });
              const payload = randomBytes(1 + ((wave * 100 + i) % 2000));
              peer.sendBinary(payload);
              assert.ok((await peer.nextMessage(30_000)).data.equals(payload));
              if (i % 3 === 0) assert.equal(await peer.closeCleanly(1000, 30_000), 1000);
              else if (i % 3 === 1) peer.reset();
              else {
                peer.socket.end();
                await peer.closedWithin(30_000);
              }
            }),
          );
        }
      });
    });
  });
}
