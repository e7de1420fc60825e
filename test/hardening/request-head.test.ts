// Malformed and smuggling-style upgrade requests against `humphrey-ws echo` (both modes, plain
// and --cert). Each must be refused with one 4xx (or 505) response, never a 101, and the connection
// closed; bytes after a request are never read as a second request.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exchange, openSocket, Peer, upgradeRequest, withDeadline } from './peer.js';
import { goodLines, head, KEY, replaced, withoutKey } from './requests.js';
import { startEcho, survives, VARIANTS, type EchoServer } from './server.js';

for (const variant of VARIANTS) {
  describe(`malformed requests to humphrey-ws echo (${variant.name})`, () => {
    let server: EchoServer;
    before(async () => {
      server = await startEcho(variant.mode, variant.tls);
    });
    after(() => server.stop());

    // Each with the statuses that fit (default: any 4xx).
    const malformed: [string, () => string | Buffer, number[]?][] = [
      ['no Sec-WebSocket-Key', () => withoutKey(server.target)],
      ['a Sec-WebSocket-Key of 15 bytes', () => head(replaced(server.target, 'Sec-WebSocket-Key', `Sec-WebSocket-Key: ${randomBytes(15).toString('base64')}`))],
      ['two Sec-WebSocket-Key headers', () => head([...goodLines(server.target), `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`])],
      ['Sec-WebSocket-Version 8', () => head(replaced(server.target, 'Sec-WebSocket-Version', 'Sec-WebSocket-Version: 8'))],
      ['POST', () => head(goodLines(server.target), 'POST / HTTP/1.1')],
      ['HTTP/1.0', () => head(goodLines(server.target), 'GET / HTTP/1.0')],
      ['no Host', () => head(replaced(server.target, 'Host', null))],
      ['Upgrade: h2c', () => head(replaced(server.target, 'Upgrade', 'Upgrade: h2c'))],
      ['no Upgrade token in Connection', () => head(replaced(server.target, 'Connection', 'Connection: keep-alive'))],
      ['a space before the colon', () => head(replaced(server.target, 'Upgrade', 'Upgrade : websocket'))],
      ['an obs-fold continuation line', () => head([...goodLines(server.target), 'X-Folded: a', ' continued'])],
      ['a bare LF inside a header line', () => head([...goodLines(server.target), 'X-A: a\nX-Injected: b'])],
      ['a bare CR inside a header value', () => head([...goodLines(server.target), 'X-A: a\rb'])],
      ['a NUL in a header value', () => head([...goodLines(server.target), 'X-A: a\0b'])],
      ['a non-token header name', () => head([...goodLines(server.target), 'X(A): b'])],
      ['an empty header name', () => head([...goodLines(server.target), ': b'])],
      ['a request line with two spaces', () => head(goodLines(server.target), 'GET  / HTTP/1.1')],
      ['a lower-case method', () => head(goodLines(server.target), 'get / HTTP/1.1')],
      // RFC 9112 2.3: a major version the server does not speak gets 505.
      ['the HTTP/2 preface', () => 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [505]],
      ['an HTTP/2.0 request line', () => head(goodLines(server.target), 'GET / HTTP/2.0'), [505]],
      ['binary garbage ending in CRLFCRLF', () => Buffer.concat([randomBytes(512), Buffer.from('\r\n\r\n')])],
    ];
    for (const [name, build, statuses] of malformed) {
      it(`refuses a handshake with ${name}`, async () => {
        await survives(server, async () => {
          const result = await exchange(server.target, build());
          const status = result.status ?? 0;
          const fits = statuses ? statuses.includes(status) : status >= 400 && status < 500;
          assert.ok(fits, `${statuses ? statuses.join(' or ') : 'a 4xx answer'}, got ${JSON.stringify(result.text.slice(0, 200))}`);
          assert.equal(result.responses, 1, 'exactly one response');
        });
      });
    }

    it('a pipelined second request after a refused or plain one is never answered', async () => {
      await survives(server, async () => {
        for (const first of [withoutKey(server.target), head([`Host: ${server.target.host}`], 'GET /plain HTTP/1.1')]) {
          const result = await exchange(server.target, first + upgradeRequest(server.target, KEY));
          assert.equal(result.responses, 1, `one response only, got ${JSON.stringify(result.text)}`);
          assert.notEqual(result.status, 101);
        }
      });
    });

    it('bytes after an accepted upgrade are frames, never a second HTTP request', async () => {
      await survives(server, async () => {
        // A body announced by Content-Length and Transfer-Encoding, then a second request.
        const raw = await openSocket(server.target);
        const received: Buffer[] = [];
        raw.socket.on('data', (chunk: Buffer) => received.push(chunk));
        raw.socket.write(upgradeRequest(server.target, KEY, '/', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n') + upgradeRequest(server.target, KEY));
        await withDeadline(raw.closed, 10_000, 'the server did not close the connection');
        const all = Buffer.concat(received);
        const text = all.toString('latin1');
        assert.ok((text.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0) <= 1, `at most one HTTP response, got ${JSON.stringify(text)}`);
        if (text.startsWith('HTTP/1.1 101')) {
          // The second request's bytes were read as a frame (unmasked, reserved bits): close 1002.
          const frames = all.subarray(text.indexOf('\r\n\r\n') + 4);
          assert.equal(frames[0], 0x88, 'a close frame follows the 101');
          assert.equal(frames.readUInt16BE(2), 1002);
        }
      });
    });

    it('headers named __proto__, constructor and toString are ordinary headers', async () => {
      await survives(server, async () => {
        const peer = await Peer.open(server.target, { headers: '__proto__: x\r\nconstructor: y\r\ntoString: z\r\nhasOwnProperty: w\r\n' });
        peer.sendText('still fine');
        assert.equal((await peer.nextMessage()).data.toString(), 'still fine');
        assert.equal(await peer.closeCleanly(), 1000);
      });
    });
  });
}
