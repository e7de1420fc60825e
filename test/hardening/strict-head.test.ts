// Request heads that RFC 9112 makes invalid in ways a lenient parser lets through (issue 7,
// item 9), against `humphrey-ws echo` (both modes, plain and --cert).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { exchange } from './peer.js';
import { goodLines, head } from './requests.js';
import { startEcho, survives, VARIANTS, type EchoServer } from './server.js';

for (const variant of VARIANTS) {
  describe(`strict request heads on humphrey-ws echo (${variant.name})`, () => {
    let server: EchoServer;
    before(async () => {
      server = await startEcho(variant.mode, variant.tls);
    });
    after(() => server.stop());

    // What `.trim()` strips besides spaces and tabs must not make a bad value good.
    const invalid: [string, () => string | Buffer][] = [
      ['two Host headers', () => head([...goodLines(server.target), 'Host: evil.example'])],
      ['a vertical tab at the end of a value', () => head([...goodLines(server.target), 'X-A: a\v'])],
      ['a form feed at the start of a value', () => head([...goodLines(server.target), 'X-A: \fa'])],
    ];
    for (const [name, build] of invalid) {
      it(`answers a request with ${name} with 400`, async () => {
        await survives(server, async () => {
          const result = await exchange(server.target, build());
          assert.equal(result.status, 400, `got ${JSON.stringify(result.text.slice(0, 200))}`);
          assert.equal(result.responses, 1);
        });
      });
    }

    it('a no-break space (0xA0) around Sec-WebSocket-Version is part of the value, not whitespace', async () => {
      await survives(server, async () => {
        const lines = goodLines(server.target).map((line) => (line.startsWith('Sec-WebSocket-Version') ? 'Sec-WebSocket-Version: \xa013\xa0' : line));
        const result = await exchange(server.target, Buffer.from(head(lines), 'latin1'));
        const status = result.status ?? 0;
        assert.ok(status >= 400 && status < 500, `refused, got ${JSON.stringify(result.text.slice(0, 200))}`);
      });
    });
  });
}
