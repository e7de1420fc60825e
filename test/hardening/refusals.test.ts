// Refused handshakes against `humphrey-ws echo` (both modes, plain and --cert): the original
// bug (a refused upgrade followed by a TCP reset killed the server with an unhandled
// ECONNRESET), and refused clients that do not go away. The server must stay up and free
// every refused socket itself, whatever the client does.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exchange, openSocket, readResponseHead, resetSocket, withDeadline } from './peer.js';
import { goodLines, head, withoutKey } from './requests.js';
import { sleep, startEcho, survives, VARIANTS, type EchoServer } from './server.js';

for (const variant of VARIANTS) {
  describe(`refused handshakes on humphrey-ws echo (${variant.name})`, () => {
    let server: EchoServer;
    before(async () => {
      server = await startEcho(variant.mode, variant.tls);
    });
    after(() => server.stop());

    // Refused by the handshake (400), for the head's size (431), as malformed (400), and as
    // plain HTTP (426).
    const refused: [string, () => string][] = [
      ['an upgrade without Sec-WebSocket-Key', () => withoutKey(server.target)],
      ['a request head over 16 KiB', () => head([...goodLines(server.target), `X-Big: ${'a'.repeat(20_000)}`])],
      ['a malformed request line', () => head(goodLines(server.target), 'GET  / HTTP/1.1')],
      ['a plain GET', () => head([`Host: ${server.target.host}`])],
    ];
    for (const [name, request] of refused) {
      it(`${name}, refused and followed by a TCP reset, does not kill the server`, async () => {
        await survives(server, async () => {
          // The reset lands at different points: before the refusal is written, while it is,
          // and after it has arrived.
          for (let round = 0; round < 30; round++) {
            const raw = await openSocket(server.target);
            raw.socket.write(request());
            if (round % 3 === 1) await sleep(1);
            if (round % 3 === 2) await readResponseHead(raw);
            resetSocket(raw);
          }
        });
      });
    }

    it('a refused upgrade is answered with 400 and the connection closed', async () => {
      await survives(server, async () => {
        const result = await exchange(server.target, withoutKey(server.target));
        assert.equal(result.status, 400);
        assert.equal(result.responses, 1);
      });
    });

    /** Sends `request` from a client that then neither reads nor closes; the server must let go. */
    async function refusedAndIgnored(request: string): Promise<void> {
      const before = server.fds();
      const raw = await openSocket(server.target);
      try {
        raw.socket.pause();
        raw.socket.write(request);
        // The server frees the socket itself (after a linger): its descriptor goes while ours
        // is still open.
        await server.settlesTo(before);
      } finally {
        raw.socket.destroy();
      }
      await survives(server, async () => {});
    }

    it('a client refused by the handshake that never reads nor closes is disconnected', async () => {
      await refusedAndIgnored(withoutKey(server.target));
    });

    it('a client refused for its head size that never reads nor closes is disconnected', async () => {
      await refusedAndIgnored(head([...goodLines(server.target), `X-Big: ${'a'.repeat(20_000)}`]));
    });

    it('a request head over 16 KiB gets 431 and the connection is closed', async () => {
      await survives(server, async () => {
        const big = await exchange(server.target, head([...goodLines(server.target), `X-Big: ${'a'.repeat(20_000)}`]));
        assert.equal(big.status, 431);
      });
    });

    it('a request head that never ends gets 431 and is cut off', async () => {
      await survives(server, async () => {
        // 1 MiB of one header value, never ending, from a client that reads the answer.
        const raw = await openSocket(server.target);
        const received: Buffer[] = [];
        raw.socket.on('data', (chunk: Buffer) => received.push(chunk));
        raw.socket.write(`GET / HTTP/1.1\r\nX-Endless: `);
        const piece = 'b'.repeat(16 * 1024);
        for (let i = 0; i < 64 && !raw.socket.destroyed; i++) {
          if (!raw.socket.write(piece)) await Promise.race([new Promise((resolve) => raw.socket.once('drain', resolve)), raw.closed]);
        }
        await withDeadline(raw.closed, 10_000, 'the server did not close an endless request head');
        assert.match(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 431 /);
      });
    });

    it('a request with too many headers gets 431', async () => {
      await survives(server, async () => {
        const many = Array.from({ length: 500 }, (_, i) => `X-H${i}: ${i}`);
        const result = await exchange(server.target, head([...goodLines(server.target), ...many]));
        assert.equal(result.status, 431);
      });
    });

    it('a request line over the size limit gets 414', async () => {
      await survives(server, async () => {
        const result = await exchange(server.target, head(goodLines(server.target), `GET /${'p'.repeat(20_000)} HTTP/1.1`));
        assert.equal(result.status, 414);
      });
    });
  });
}
