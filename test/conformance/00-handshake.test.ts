// Category 0: the opening handshake (RFC 6455 4.2). Valid requests in all their legal spellings
// are accepted with a correct 101 response; invalid ones are refused with an HTTP error.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OP, RawClient, acceptFor, buildRequest, text, withClient, type HandshakeOptions, type HttpResponse } from './raw-client.js';
import { useTarget, opts } from './harness.js';
import type { Target } from './target.js';

async function exchange(target: Target, options: HandshakeOptions): Promise<HttpResponse> {
  const c = await RawClient.open(target);
  try {
    const key = options.key ?? randomBytes(16).toString('base64');
    return await c.handshake(buildRequest(target, key, options), options);
  } finally {
    c.destroy();
  }
}

function describeResponse(res: HttpResponse): string {
  return JSON.stringify(res.raw);
}

function assertRefused(res: HttpResponse, statuses: number[]) {
  assert.ok(statuses.includes(res.status), `expected status ${statuses.join(' or ')}, got ${describeResponse(res)}`);
}

const WS_VERSION =
  'ws answers an unsupported Sec-WebSocket-Version with 400 (and "Sec-WebSocket-Version: 13, 8"), not 426';

describe('0 opening handshake', () => {
  const target = useTarget();
  let n = 0;

  it(`0.${++n} valid request -> 101 with the right Upgrade, Connection and Sec-WebSocket-Accept`, opts(), () =>
    withClient(target(), async (c) => {
      const res = c.response!;
      assert.equal(res.status, 101, describeResponse(res));
      assert.ok(!res.headers.has('sec-websocket-protocol'), `subprotocol chosen without an offer: ${describeResponse(res)}`);
      await c.send(text('hello'));
      await c.expectMessage(OP.TEXT, 'hello');
      await c.closeHandshake();
    }),
  );

  it(`0.${++n} the accept value is computed from the key (RFC 6455 4.2.2 example key)`, opts(), async () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const res = await exchange(target(), { key });
    assert.equal(res.status, 101, describeResponse(res));
    assert.equal(acceptFor(key), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(res.headers.get('sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  for (const version of ['12', '14', '8', '0']) {
    it(`0.${++n} Sec-WebSocket-Version: ${version} -> 426 with Sec-WebSocket-Version: 13`, opts(undefined, version === '8' ? { ws: 'ws also accepts version 8 (draft hybi-08) with 101' } : { ws: WS_VERSION }), async () => {
      const res = await exchange(target(), { headers: { 'Sec-WebSocket-Version': version } });
      assertRefused(res, [426]);
      const versions = (res.headers.get('sec-websocket-version') ?? '').split(/\s*,\s*/);
      assert.ok(versions.includes('13'), `426 without Sec-WebSocket-Version: 13: ${describeResponse(res)}`);
    });
  }

  it(`0.${++n} missing Sec-WebSocket-Version -> 400 or 426`, opts(), async () => {
    const res = await exchange(target(), { headers: { 'Sec-WebSocket-Version': null } });
    assertRefused(res, [400, 426]);
  });

  it(`0.${++n} missing Sec-WebSocket-Key -> 400`, opts(), async () => {
    const res = await exchange(target(), { headers: { 'Sec-WebSocket-Key': null } });
    assertRefused(res, [400]);
  });

  for (const [label, key] of [
    ['not base64', 'this is not a key!'],
    ['15 bytes', randomBytes(15).toString('base64')],
    ['17 bytes', randomBytes(17).toString('base64')],
    ['empty', ''],
  ] as const) {
    it(`0.${++n} invalid Sec-WebSocket-Key (${label}) -> 400`, opts(), async () => {
      const res = await exchange(target(), { key });
      assertRefused(res, [400]);
    });
  }

  it(`0.${++n} two Sec-WebSocket-Key headers -> 400`, opts(), async () => {
    const c = await RawClient.open(target());
    try {
      const key = randomBytes(16).toString('base64');
      const request = buildRequest(target(), key, {}).replace(
        '\r\n\r\n',
        `\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
      assertRefused(await c.handshake(request), [400]);
    } finally {
      c.destroy();
    }
  });

  it(`0.${++n} Sec-WebSocket-Key surrounded by extra whitespace -> 101, accept computed from the trimmed key`, opts(), async () => {
    const key = randomBytes(16).toString('base64');
    const res = await exchange(target(), { key: `  ${key}\t ` });
    assert.equal(res.status, 101, describeResponse(res));
    assert.equal(res.headers.get('sec-websocket-accept'), acceptFor(key), describeResponse(res));
  });

  for (const method of ['POST', 'PUT']) {
    it(`0.${++n} ${method} with upgrade headers -> 400 or 405`, opts(), async () => {
      const res = await exchange(target(), { method, headers: { 'Content-Length': '0' } });
      assertRefused(res, [400, 405]);
    });
  }

  // RFC 6455 4.1/4.2.1: the handshake is an HTTP/1.1 (or higher) GET request.
  it(`0.${++n} HTTP/1.0 request -> refused (4xx or 505)`, opts(undefined, { ws: 'ws upgrades HTTP/1.0 requests' }), async () => {
    const res = await exchange(target(), { httpVersion: '1.0' });
    assert.ok((res.status >= 400 && res.status < 500) || res.status === 505, describeResponse(res));
  });

  it(`0.${++n} Connection without the upgrade token -> not upgraded (4xx)`, opts(), async () => {
    const res = await exchange(target(), { headers: { Connection: 'keep-alive' } });
    assert.ok(res.status >= 400 && res.status < 500, describeResponse(res));
  });

  it(`0.${++n} missing Upgrade header -> not upgraded (4xx)`, opts(), async () => {
    const res = await exchange(target(), { headers: { Upgrade: null } });
    assert.ok(res.status >= 400 && res.status < 500, describeResponse(res));
  });

  it(`0.${++n} Upgrade: h2c -> not upgraded (4xx)`, opts(), async () => {
    const res = await exchange(target(), { headers: { Upgrade: 'h2c' } });
    assert.ok(res.status >= 400 && res.status < 500, describeResponse(res));
  });

  const accepted: [string, Record<string, string | null>][] = [
    ['Connection: keep-alive, Upgrade', { Connection: 'keep-alive, Upgrade' }],
    ['Connection: Upgrade, keep-alive', { Connection: 'Upgrade, keep-alive' }],
    ['Connection: UPGRADE', { Connection: 'UPGRADE' }],
    ['upgrade: WebSocket (lower-case name, mixed-case value)', { upgrade: 'WebSocket' }],
    ['UPGRADE: WEBSOCKET', { UPGRADE: 'WEBSOCKET' }],
    ['lower-case header names', { 'sec-websocket-version': '13', connection: 'upgrade', host: '127.0.0.1' }],
    ['Sec-WebSocket-Extensions offer of an unknown extension (must not be accepted)', { 'Sec-WebSocket-Extensions': 'x-unknown-extension; param=1' }],
    ['extra headers (Origin, User-Agent, Cookie)', { Origin: 'http://example.com', 'User-Agent': 'conformance', Cookie: 'a=b' }],
  ];
  for (const [label, headers] of accepted) {
    it(`0.${++n} ${label} -> 101`, opts(), () =>
      withClient(
        target(),
        async (c) => {
          await c.send(text('ok'));
          await c.expectMessage(OP.TEXT, 'ok');
          await c.closeHandshake();
        },
        { headers },
      ),
    );
  }

  it(`0.${++n} any path with a query string -> 101`, opts(), () =>
    withClient(
      target(),
      async (c) => {
        await c.send(text('path'));
        await c.expectMessage(OP.TEXT, 'path');
        await c.closeHandshake();
      },
      { path: '/some/deep/path?query=1&x=%20y' },
    ),
  );

  it(`0.${++n} Sec-WebSocket-Protocol offered -> 101, and any chosen subprotocol is one offered`, opts(), async () => {
    const c = await RawClient.connect(target(), { headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } });
    try {
      const chosen = c.response!.headers.get('sec-websocket-protocol');
      if (chosen !== undefined) assert.ok(['chat', 'superchat'].includes(chosen), `chose ${chosen}`);
      await c.send(text('proto'));
      await c.expectMessage(OP.TEXT, 'proto');
      await c.closeHandshake();
      c.assertNoViolations();
    } finally {
      c.destroy();
    }
  });

  it(`0.${++n} request chopped into 1-byte writes -> 101`, opts(), () =>
    withClient(
      target(),
      async (c) => {
        await c.send(text('slow'));
        await c.expectMessage(OP.TEXT, 'slow');
        await c.closeHandshake();
      },
      { delivery: { chunks: 'bytes', delayMs: 0 } },
    ),
  );

  it(`0.${++n} the 101 response carries no body and nothing unsolicited follows it`, opts(), () =>
    withClient(target(), async (c) => {
      assert.equal(c.response!.rest.length, 0, `bytes after the 101 head: ${c.response!.rest.toString('hex')}`);
      await c.expectSilence(200);
      await c.closeHandshake();
    }),
  );
});
