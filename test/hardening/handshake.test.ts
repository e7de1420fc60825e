// Handshakes cut short against `humphrey-ws echo` (both modes, plain and --cert): resets at
// every point, an end mid-request, and 1000 clients that send part of a request while a normal
// client connects. After each, the server must be alive, serve a fresh client, and hold no more
// file descriptors than before.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSocket, Peer, resetSocket, upgradeRequest, withDeadline, type RawSocket } from './peer.js';
import { KEY } from './requests.js';
import { sleep, startEcho, survives, VARIANTS, type EchoServer } from './server.js';

for (const variant of VARIANTS) {
  describe(`handshakes cut short on humphrey-ws echo (${variant.name})`, () => {
    let server: EchoServer;
    before(async () => {
      server = await startEcho(variant.mode, variant.tls);
    });
    after(() => server.stop());

    it('resets at every point of the handshake', async () => {
      const request = upgradeRequest(server.target, KEY);
      await survives(server, async () => {
        const raws: RawSocket[] = [];
        // Right after connecting (for TLS: right after the TLS handshake).
        raws.push(await openSocket(server.target));
        // Mid-request: one byte of the head, half of it, all but the final CRLF.
        for (const cut of [1, request.length >> 1, request.length - 2]) {
          const raw = await openSocket(server.target);
          raw.socket.write(request.slice(0, cut));
          raws.push(raw);
        }
        // The whole request, reset before the 101 can be read.
        const whole = await openSocket(server.target);
        whole.socket.write(request);
        raws.push(whole);
        await sleep(20);
        for (const raw of raws) resetSocket(raw);
        // The whole request and the 101 read, then a reset before any frame.
        const peer = await Peer.open(server.target);
        peer.reset();
      });
    });

    it('a TCP end mid-request is answered by closing, not by waiting', async () => {
      await survives(server, async () => {
        const raw = await openSocket(server.target);
        raw.socket.end(upgradeRequest(server.target, KEY).slice(0, 40));
        await withDeadline(raw.closed, 10_000, 'the server did not close after the client ended mid-request');
      });
    });

    it('1000 clients that send part of a request do not keep a normal client from its handshake', async () => {
      await survives(server, async () => {
        const stalled: RawSocket[] = [];
        try {
          const partial = upgradeRequest(server.target, KEY).slice(0, 30);
          // Opened in batches so that the listen backlog is not what is being tested.
          for (let batch = 0; batch < 10; batch++) {
            const opened = await Promise.all(Array.from({ length: 100 }, () => openSocket(server.target, 30_000)));
            for (const raw of opened) raw.socket.write(partial);
            stalled.push(...opened);
          }
          const peer = await Peer.open(server.target);
          peer.sendText('through');
          assert.equal((await peer.nextMessage()).data.toString(), 'through');
          assert.equal(await peer.closeCleanly(), 1000);
        } finally {
          for (const raw of stalled) raw.socket.destroy();
        }
      });
    });
  });
}
