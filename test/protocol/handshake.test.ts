import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { WebSocketError } from '../../src/protocol/errors.js';
import { parseRequestHead } from '../../src/protocol/http1.js';
import {
  acceptKeyFor,
  buildAcceptResponse,
  buildRejectResponse,
  clientHandshakeHeaders,
  createClientKey,
  headerTokens,
  isValidProtocolName,
  validateServerResponse,
  validateUpgradeRequest,
  type Headers,
  type UpgradeRequestHead,
} from '../../src/protocol/handshake.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function request(headers: Headers = {}, rest: Partial<UpgradeRequestHead> = {}): UpgradeRequestHead {
  const base: Headers = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': RFC_KEY,
    'sec-websocket-version': '13',
  };
  const merged: Headers = { ...base, ...headers };
  for (const name of Object.keys(merged)) if (merged[name] === undefined) delete merged[name];
  return { method: 'GET', httpVersion: '1.1', headers: merged, ...rest };
}

function rejected(result: ReturnType<typeof validateUpgradeRequest>) {
  assert.equal(result.ok, false, 'expected a rejection');
  if (result.ok) throw new Error('unreachable');
  return result;
}

describe('server handshake', () => {
  test('the RFC 6455 example key gives the example accept value', () => {
    assert.equal(acceptKeyFor(RFC_KEY), RFC_ACCEPT);
    // And it is SHA-1 of key + GUID in base64 for any key.
    const key = Buffer.alloc(16, 0xab).toString('base64');
    assert.equal(acceptKeyFor(key), createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'));
  });

  test('a valid request is accepted with the accept value and no protocols', () => {
    assert.deepEqual(validateUpgradeRequest(request()), { ok: true, accept: RFC_ACCEPT, protocols: [] });
  });

  test('Upgrade and Connection tokens are found in lists, in any case', () => {
    const upgrades: Headers['upgrade'][] = ['websocket', 'WebSocket', 'WEBSOCKET', 'h2c, websocket', ' websocket ', ['foo', 'WebSocket']];
    const connections: Headers['connection'][] = ['Upgrade', 'upgrade', 'UPGRADE', 'keep-alive, Upgrade', 'Upgrade,keep-alive', '  keep-alive ,  upgrade  ', ['keep-alive', 'Upgrade']];
    for (const upgrade of upgrades) {
      for (const connection of connections) {
        const result = validateUpgradeRequest(request({ upgrade, connection }));
        assert.equal(result.ok, true, `Upgrade ${JSON.stringify(upgrade)} Connection ${JSON.stringify(connection)}`);
      }
    }
  });

  test('Upgrade and Connection without the token: 400', () => {
    for (const upgrade of [undefined, '', 'h2c', 'websockets', 'web socket', 'websocket/13']) {
      const r = rejected(validateUpgradeRequest(request({ upgrade })));
      assert.equal(r.status, 400, `Upgrade ${upgrade}`);
      assert.match(r.body, /Upgrade/);
    }
    for (const connection of [undefined, '', 'close', 'keep-alive', 'upgrades', 'Upgrade-Insecure']) {
      const r = rejected(validateUpgradeRequest(request({ connection })));
      assert.equal(r.status, 400, `Connection ${connection}`);
      assert.match(r.body, /Connection/);
    }
  });

  test('Sec-WebSocket-Version other than 13: 426 with Sec-WebSocket-Version: 13', () => {
    for (const version of [undefined, '', '8', '12', '14', '7', '0x0d', '013']) {
      const r = rejected(validateUpgradeRequest(request({ 'sec-websocket-version': version })));
      assert.equal(r.status, 426, `version ${version}`);
      assert.deepEqual(r.headers, { 'Sec-WebSocket-Version': '13' });
      assert.match(r.body, /13/);
    }
    assert.equal(validateUpgradeRequest(request({ 'sec-websocket-version': ' 13 ' })).ok, true);
  });

  test('Sec-WebSocket-Key must be base64 of 16 bytes: else 400 saying so', () => {
    const bad = [
      undefined,
      '',
      'short',
      Buffer.alloc(15).toString('base64'),
      Buffer.alloc(17).toString('base64'),
      Buffer.alloc(32).toString('base64'),
      'dGhlIHNhbXBsZSBub25jZR==', // last character carries non-zero padding bits
      'dGhlIHNhbXBsZSBub25jZQ=', // padding cut
      'dGhlIHNhbXBsZSBub25jZQ', // no padding
      'dGhlIHNhbXBsZSBub25j!Q==',
      'dGhlIHNhbXBsZSBub25jZQ==x',
      'dGhlIHNh bXBsZSBub25jZQ==',
      [RFC_KEY, RFC_KEY],
    ];
    for (const key of bad) {
      const r = rejected(validateUpgradeRequest(request({ 'sec-websocket-key': key })));
      assert.equal(r.status, 400, `key ${JSON.stringify(key)}`);
      assert.match(r.body, /Sec-WebSocket-Key/);
      assert.match(r.body, /16 bytes/);
    }
    for (const last of 'AQgw') {
      const key = 'dGhlIHNhbXBsZSBub25jZ' + last + '==';
      assert.equal(Buffer.from(key, 'base64').length, 16);
      assert.equal(validateUpgradeRequest(request({ 'sec-websocket-key': key })).ok, true, key);
    }
    assert.equal(validateUpgradeRequest(request({ 'sec-websocket-key': `  ${RFC_KEY} ` })).ok, true, 'surrounding whitespace');
    for (let i = 0; i < 50; i++) {
      const key = createClientKey().key;
      assert.equal(validateUpgradeRequest(request({ 'sec-websocket-key': key })).ok, true, key);
    }
  });

  test('a method other than GET: 405 with Allow: GET', () => {
    for (const method of ['POST', 'PUT', 'HEAD', 'OPTIONS', 'CONNECT', 'get']) {
      const r = rejected(validateUpgradeRequest(request({}, { method })));
      assert.equal(r.status, 405, method);
      assert.equal(r.headers['Allow'], 'GET');
    }
  });

  test('HTTP/1.0 (or older): 400; another major version: 505; a later 1.x is 1.1', () => {
    for (const httpVersion of ['1.0', '0.9']) {
      const r = rejected(validateUpgradeRequest(request({}, { httpVersion })));
      assert.equal(r.status, 400, httpVersion);
      assert.match(r.body, /HTTP\/1\.1/);
    }
    for (const httpVersion of ['2.0', '3.0', '9.1']) {
      const r = rejected(validateUpgradeRequest(request({}, { httpVersion })));
      assert.equal(r.status, 505, httpVersion);
      assert.match(r.body, /HTTP\/1\.1/);
    }
    for (const httpVersion of ['', '1', '11', '1.1.1', 'a.b', '1,1']) {
      assert.equal(rejected(validateUpgradeRequest(request({}, { httpVersion }))).status, 400, httpVersion);
    }
    assert.equal(validateUpgradeRequest(request({}, { httpVersion: '1.2' })).ok, true);
  });

  test('a missing Host header: 400 (RFC 6455 4.2.1 item 2)', () => {
    for (const host of [undefined, '', '  ']) {
      const r = rejected(validateUpgradeRequest(request({ host })));
      assert.equal(r.status, 400, `host ${JSON.stringify(host)}`);
      assert.match(r.body, /Host/);
    }
  });

  test('an invalid Host value: 400; several Host headers: 400', () => {
    for (const host of ['a b', 'a/b', 'a:b', '[::1', 'caf\xe9', 'a, b']) {
      assert.deepEqual(rejected(validateUpgradeRequest(request({ host }))).body, host === 'caf\xe9' ? 'invalid characters in the Host header' : 'invalid Host header', host);
    }
    assert.equal(rejected(validateUpgradeRequest(request({ host: ['a', 'b'] }))).body, 'repeated Host header');
    assert.equal(validateUpgradeRequest(request({ host: ' [::1]:8080 ' })).ok, true);
  });

  test('rawHeaders (node:http keeps only the first Host in headers): repeated Host, key or version: 400', () => {
    const raw = ['Host', 'server.example.com', 'Upgrade', 'websocket', 'Connection', 'Upgrade', 'Sec-WebSocket-Key', RFC_KEY, 'Sec-WebSocket-Version', '13'];
    assert.equal(validateUpgradeRequest({ ...request(), rawHeaders: raw }).ok, true);
    for (const [name, value, why] of [
      ['HOST', 'other.example', /repeated Host/],
      ['sec-websocket-key', RFC_KEY, /Sec-WebSocket-Key.*16 bytes/],
      ['Sec-WebSocket-Version', '13', /repeated Sec-WebSocket-Version/],
    ] as const) {
      const r = rejected(validateUpgradeRequest({ ...request(), rawHeaders: [...raw, name, value] }));
      assert.equal(r.status, 400, name);
      assert.match(r.body, why);
    }
  });

  test('a request with a body (Transfer-Encoding, or Content-Length other than 0): 400', () => {
    for (const extra of [
      { 'transfer-encoding': 'chunked' },
      { 'transfer-encoding': '' },
      { 'content-length': '5' },
      { 'content-length': '0, 0' },
      { 'content-length': '00' },
      { 'transfer-encoding': 'chunked', 'content-length': '0' },
    ]) {
      const r = rejected(validateUpgradeRequest(request(extra)));
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.match(r.body, /must not have a body/);
    }
    assert.equal(validateUpgradeRequest(request({ 'content-length': '0' })).ok, true);
  });

  test('a repeated Sec-WebSocket-Version: 400, not 426', () => {
    for (const version of ['13, 13', '13, 8', '13,', ['13', '13'], ['13']]) {
      const r = rejected(validateUpgradeRequest(request({ 'sec-websocket-version': version })));
      assert.equal(r.status, 400, JSON.stringify(version));
      assert.match(r.body, /repeated Sec-WebSocket-Version/);
    }
  });

  test('control characters or non-ASCII bytes in a handshake header: 400, even where trim() would strip them', () => {
    const values: Record<string, string> = {
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': RFC_KEY,
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
      'content-length': '0',
    };
    const names: Record<string, string> = { 'sec-websocket-key': 'Sec-WebSocket-Key', 'sec-websocket-version': 'Sec-WebSocket-Version' };
    for (const [name, value] of Object.entries(values)) {
      assert.equal(validateUpgradeRequest(request({ [name]: value })).ok, true, name);
      for (const bad of ['\v', '\f', '\xa0', '\x00', '\x1f', '\x7f', '\x85', '\xff', '\r', '\n', '\u2028', '\ufeff']) {
        for (const text of [bad + value, value + bad]) {
          const r = rejected(validateUpgradeRequest(request({ [name]: text })));
          assert.equal(r.status, 400, `${name}: ${JSON.stringify(text)}`);
          assert.match(r.body, /invalid characters in the /, `${name}: ${JSON.stringify(text)}`);
          if (names[name]) assert.ok(r.body.includes(names[name]!));
        }
      }
    }
    // Other headers keep their obs-text (a browser's UTF-8 cookie, say).
    assert.equal(validateUpgradeRequest(request({ cookie: 'name=caf\xc3\xa9', 'user-agent': '\xa0x' })).ok, true);
  });

  test('headers named like Object.prototype members neither crash nor confuse the check', () => {
    const headers = JSON.parse('{"__proto__": "x", "constructor": "y", "hasOwnProperty": "z"}') as Headers;
    assert.equal(validateUpgradeRequest(request(headers)).ok, true);
    const bare = Object.assign(Object.create(null) as Headers, request().headers, { __proto__: 'x' });
    assert.equal(validateUpgradeRequest({ method: 'GET', httpVersion: '1.1', headers: bare }).ok, true);
  });

  test('Sec-WebSocket-Key given twice: 400, however it is merged', () => {
    for (const key of [`${RFC_KEY}, ${RFC_KEY}`, `${RFC_KEY},${RFC_KEY}`, [RFC_KEY], [RFC_KEY, RFC_KEY]]) {
      const r = rejected(validateUpgradeRequest(request({ 'sec-websocket-key': key })));
      assert.equal(r.status, 400, JSON.stringify(key));
      assert.match(r.body, /repeated .*Sec-WebSocket-Key/);
    }
  });

  test('offered subprotocols are parsed in order; a list that is not tokens is 400 (RFC 6455 4.2.1)', () => {
    const cases: [Headers['sec-websocket-protocol'], string[]][] = [
      ['chat', ['chat']],
      ['chat, superchat', ['chat', 'superchat']],
      ['  chat ,superchat,, v2.json ', ['chat', 'superchat', 'v2.json']],
      [['chat', 'superchat, x'], ['chat', 'superchat', 'x']],
      ['', []],
    ];
    for (const [header, expected] of cases) {
      const result = validateUpgradeRequest(request({ 'sec-websocket-protocol': header }));
      assert.deepEqual(result, { ok: true, accept: RFC_ACCEPT, protocols: expected }, JSON.stringify(header));
    }
    for (const header of ['chat, super chat', 'a;b', 'é', 'x, "y"', 'a/b', ['ok', 'not ok']]) {
      const r = rejected(validateUpgradeRequest(request({ 'sec-websocket-protocol': header })));
      assert.equal(r.status, 400, JSON.stringify(header));
      assert.match(r.body, /Sec-WebSocket-Protocol/);
    }
    assert.deepEqual(headerTokens(' a,b ,, c '), ['a', 'b', 'c']);
    assert.deepEqual(headerTokens(undefined), []);
  });

  test('the 101 response, byte for byte', () => {
    assert.equal(
      buildAcceptResponse(RFC_ACCEPT),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n\r\n`,
    );
    assert.equal(
      buildAcceptResponse(RFC_ACCEPT, 'chat', { 'X-Extra': '1' }),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\nX-Extra: 1\r\n\r\n`,
    );
  });

  test('rejection responses, byte for byte, with the body length in bytes', () => {
    const r = rejected(validateUpgradeRequest(request({ 'sec-websocket-version': '8' })));
    assert.equal(
      buildRejectResponse(r.status, 'no', r.headers),
      'HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        'Sec-WebSocket-Version: 13\r\nContent-Length: 2\r\n\r\nno',
    );
    assert.equal(
      buildRejectResponse(400, 'κ'),
      'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nκ',
    );
    assert.equal(
      buildRejectResponse(403, '{}', { 'content-type': 'application/json' }),
      'HTTP/1.1 403 Forbidden\r\nConnection: close\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}',
    );
    assert.match(buildRejectResponse(405, '', { Allow: 'GET' }), /^HTTP\/1\.1 405 Method Not Allowed\r\n.*Allow: GET\r\nContent-Length: 0\r\n\r\n$/s);
  });
});

describe('client handshake', () => {
  test('createClientKey: a fresh base64 16-byte key and its accept value', () => {
    const a = createClientKey();
    const b = createClientKey();
    assert.notEqual(a.key, b.key);
    assert.equal(Buffer.from(a.key, 'base64').length, 16);
    assert.equal(Buffer.from(a.key, 'base64').toString('base64'), a.key);
    assert.equal(a.expectedAccept, acceptKeyFor(a.key));
  });

  test('clientHandshakeHeaders: the RFC headers, protocols joined; invalid or duplicate names refused', () => {
    assert.deepEqual(clientHandshakeHeaders(RFC_KEY, []), {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': RFC_KEY,
      'Sec-WebSocket-Version': '13',
    });
    assert.equal(clientHandshakeHeaders(RFC_KEY, ['chat', 'superchat'])['Sec-WebSocket-Protocol'], 'chat, superchat');
    for (const bad of ['', 'a b', 'a,b', 'a;b', 'é', 'a"b', '(x)', 'a/b', 'a\tb']) {
      assert.equal(isValidProtocolName(bad), false, bad);
      assert.throws(() => clientHandshakeHeaders(RFC_KEY, [bad]), (e: unknown) => e instanceof WebSocketError && e.code === 'WS_ERR_INVALID_ARGUMENT');
    }
    for (const good of ['chat', 'v2.json', 'a-b_c~d', "!#$%&'*+-.^_`|~"]) assert.equal(isValidProtocolName(good), true, good);
    assert.throws(() => clientHandshakeHeaders(RFC_KEY, ['chat', 'chat']), (e: unknown) => e instanceof WebSocketError && e.code === 'WS_ERR_INVALID_ARGUMENT');
  });

  const good: Headers = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': RFC_ACCEPT };
  const fails = (status: number, headers: Headers, offered: string[] = [], why?: RegExp) =>
    assert.throws(
      () => validateServerResponse(status, headers, RFC_ACCEPT, offered),
      (e: unknown) => e instanceof WebSocketError && e.code === 'WS_ERR_HANDSHAKE' && (why === undefined || why.test(e.message)),
    );

  test('validateServerResponse accepts a correct 101 and returns the chosen protocol', () => {
    assert.equal(validateServerResponse(101, good, RFC_ACCEPT, []), undefined);
    assert.equal(validateServerResponse(101, good, RFC_ACCEPT, ['chat']), undefined, 'the server may choose none');
    assert.equal(validateServerResponse(101, { ...good, 'sec-websocket-protocol': 'chat' }, RFC_ACCEPT, ['superchat', 'chat']), 'chat');
    assert.equal(validateServerResponse(101, { ...good, upgrade: 'WebSocket', connection: 'keep-alive, upgrade' }, RFC_ACCEPT, []), undefined);
  });

  test('validateServerResponse refuses wrong status, headers, accept, protocol or extensions', () => {
    for (const status of [0, 100, 200, 301, 400, 403, 426, 500]) fails(status, good, [], new RegExp(`${status}`));
    fails(101, { ...good, upgrade: undefined }, [], /Upgrade/);
    fails(101, { ...good, upgrade: 'h2c' }, [], /Upgrade/);
    fails(101, { ...good, connection: 'close' }, [], /Connection/);
    fails(101, { ...good, 'sec-websocket-accept': undefined }, [], /Accept/);
    fails(101, { ...good, 'sec-websocket-accept': acceptKeyFor(Buffer.alloc(16).toString('base64')) }, [], /Accept/);
    fails(101, { ...good, 'sec-websocket-accept': RFC_ACCEPT.toLowerCase() }, [], /Accept/);
    fails(101, { ...good, 'sec-websocket-protocol': 'chat' }, [], /not offered/);
    fails(101, { ...good, 'sec-websocket-protocol': 'other' }, ['chat'], /not offered/);
    fails(101, { ...good, 'sec-websocket-protocol': 'chat, superchat' }, ['chat', 'superchat'], /not offered/);
    fails(101, { ...good, 'sec-websocket-protocol': 'CHAT' }, ['chat'], /not offered/);
    fails(101, { ...good, 'sec-websocket-extensions': 'permessage-deflate' }, [], /extension/);
    fails(101, { ...good, 'sec-websocket-extensions': 'x-custom; a=1' }, [], /extension/);
  });
});

describe('upgrade requests as bytes: the head parser, then the handshake check', () => {
  /** The status a server answers `text` with: the head parser's refusal, the handshake's, or 101. */
  function statusFor(text: string): number {
    const parsed = parseRequestHead(Buffer.from(text, 'latin1'));
    assert.ok(parsed !== null, `incomplete: ${JSON.stringify(text)}`);
    if (!parsed.ok) return parsed.status;
    const verdict = validateUpgradeRequest(parsed.head);
    if (!verdict.ok) return verdict.status;
    assert.equal(verdict.accept, acceptKeyFor(parsed.head.headers['sec-websocket-key'] as string));
    return 101;
  }
  const lines = {
    host: 'Host: server.example.com',
    upgrade: 'Upgrade: websocket',
    connection: 'Connection: Upgrade',
    key: `Sec-WebSocket-Key: ${RFC_KEY}`,
    version: 'Sec-WebSocket-Version: 13',
  };
  /** The RFC 6455 example request with lines replaced (null drops one) or added. */
  function upgrade(changes: Partial<Record<keyof typeof lines, string | null>> = {}, extra: string[] = [], requestLine = 'GET /chat HTTP/1.1'): string {
    const merged = { ...lines, ...changes };
    const kept = Object.values(merged).filter((line): line is string => line !== null);
    return `${requestLine}\r\n${[...kept, ...extra].map((line) => `${line}\r\n`).join('')}\r\n`;
  }

  test('each rule, byte for byte', () => {
    const cases: [string, string, number][] = [
      ['the RFC 6455 example', upgrade(), 101],
      ['a browser request with cookies in UTF-8', upgrade({}, ['Origin: http://example.com', 'Cookie: name=caf\xc3\xa9', 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits']), 101],
      ['Content-Length: 0', upgrade({}, ['Content-Length: 0']), 101],
      ['__proto__ and constructor headers', upgrade({}, ['__proto__: x', 'constructor: y']), 101],
      ['a repeated Host', upgrade({}, ['Host: other.example']), 400],
      ['an invalid Host', upgrade({ host: 'Host: a b' }), 400],
      ['no Host', upgrade({ host: null }), 400],
      ['a repeated Sec-WebSocket-Key', upgrade({}, [`Sec-WebSocket-Key: ${RFC_KEY}`]), 400],
      ['a key of 15 bytes', upgrade({ key: `Sec-WebSocket-Key: ${Buffer.alloc(15).toString('base64')}` }), 400],
      ['a key of 17 bytes', upgrade({ key: `Sec-WebSocket-Key: ${Buffer.alloc(17).toString('base64')}` }), 400],
      ['a key that is not base64', upgrade({ key: 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==' }), 400],
      ['0xA0 before the key (trim() would strip it)', upgrade({ key: `Sec-WebSocket-Key: \xa0${RFC_KEY}` }), 400],
      ['a repeated Sec-WebSocket-Version', upgrade({}, ['Sec-WebSocket-Version: 13']), 400],
      ['Sec-WebSocket-Version 8', upgrade({ version: 'Sec-WebSocket-Version: 8' }), 426],
      ['\\v before the version (trim() would strip it)', upgrade({ version: 'Sec-WebSocket-Version: \v13' }), 400],
      ['\\f after Upgrade', upgrade({ upgrade: 'Upgrade: websocket\f' }), 400],
      ['Transfer-Encoding: chunked', upgrade({}, ['Transfer-Encoding: chunked']), 400],
      ['Content-Length: 5', upgrade({}, ['Content-Length: 5']), 400],
      ['Content-Length and Transfer-Encoding', upgrade({}, ['Content-Length: 5', 'Transfer-Encoding: chunked']), 400],
      ['obsolete line folding', upgrade({ connection: 'Connection: keep-alive,\r\n Upgrade' }), 400],
      ['whitespace before a colon', upgrade({ upgrade: 'Upgrade : websocket' }), 400],
      ['a bare LF', upgrade({ upgrade: 'Upgrade: websocket\n' }), 400],
      ['a bare CR', upgrade({ upgrade: 'Upgrade: web\rsocket' }), 400],
      ['HTTP/1.0', upgrade({}, [], 'GET /chat HTTP/1.0'), 400],
      ['HTTP/2.0', upgrade({}, [], 'GET /chat HTTP/2.0'), 505],
      ['POST', upgrade({}, [], 'POST /chat HTTP/1.1'), 405],
      ['a request target of 9000 bytes', upgrade({}, [], `GET /${'a'.repeat(9000)} HTTP/1.1`), 414],
      ['101 headers', upgrade({}, Array.from({ length: 96 }, (_, i) => `X-${i}: v`)), 431],
      ['a head of 17 KiB', upgrade({}, [`X: ${'a'.repeat(17 * 1024)}`]), 431],
    ];
    for (const [what, text, status] of cases) assert.equal(statusFor(text), status, what);
  });
});
