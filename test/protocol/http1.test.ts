import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DEFAULT_MAX_HEAD_SIZE,
  DEFAULT_MAX_HEADER_COUNT,
  DEFAULT_MAX_TARGET_LENGTH,
  isValidHost,
  parseRequestHead,
  RequestHeadParser,
  trimOws,
  type RequestHeadLimits,
  type RequestHeadResult,
} from '../../src/protocol/http1.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const parse = (text: string, limits?: RequestHeadLimits | number): RequestHeadResult | null => parseRequestHead(bytes(text), limits);

/** A valid HTTP/1.1 head with these header lines (each without CRLF). */
const request = (...lines: string[]): string => `GET / HTTP/1.1\r\n${['Host: a', ...lines].map((l) => `${l}\r\n`).join('')}\r\n`;

function accepted(text: string, limits?: RequestHeadLimits | number) {
  const result = parse(text, limits);
  assert.ok(result !== null, `incomplete: ${JSON.stringify(text)}`);
  assert.ok(result.ok, `refused ${JSON.stringify(text)}: ${result.ok ? '' : `${result.status} ${result.reason}`}`);
  return result;
}

/** The refusal of `text`, which must come even when the head is not complete yet. */
function refusal(text: string, limits?: RequestHeadLimits | number): { status: number; reason: string } {
  const result = parse(text, limits);
  assert.ok(result !== null && !result.ok, `expected a refusal for ${JSON.stringify(text)}, got ${JSON.stringify(result)}`);
  return { status: result.status, reason: result.reason };
}

/** Headers inherit nothing: their prototype is empty, frozen and has no prototype itself. */
function assertInheritsNothing(headers: object): void {
  const proto = Object.getPrototypeOf(headers) as object;
  assert.equal(Object.getPrototypeOf(proto), null);
  assert.deepEqual(Reflect.ownKeys(proto), []);
  assert.equal(Object.isFrozen(proto), true);
  assert.equal(Object.prototype.isPrototypeOf.call(Object.prototype, headers), false);
}

/** The headers of an accepted head as a plain object, after checking they inherit nothing. */
function headersOf(text: string): Record<string, unknown> {
  const { headers } = accepted(text).head;
  assertInheritsNothing(headers);
  return { ...headers };
}

describe('parseRequestHead: what it reads', () => {
  test('a browser upgrade request: method, target, version, lower-case names, the length', () => {
    const text =
      'GET /chat?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Empty:\r\n\r\n';
    const result = accepted(text + '\x81\x80frame bytes');
    assert.equal(result.length, text.length);
    assert.equal(result.head.method, 'GET');
    assert.equal(result.head.url, '/chat?x=1');
    assert.equal(result.head.httpVersion, '1.1');
    assert.deepEqual({ ...result.head.headers }, {
      host: 'example.com:8080',
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'x-empty': '',
    });
  });

  test('repeated headers are joined with ", " (cookie with "; ")', () => {
    assert.deepEqual(headersOf(request('Connection: keep-alive', 'Connection: Upgrade', 'Cookie: a=1', 'COOKIE: b=2')), {
      host: 'a',
      connection: 'keep-alive, Upgrade',
      cookie: 'a=1; b=2',
    });
  });

  test('only SP and HTAB around a value are removed; obs-text is kept, never stripped', () => {
    assert.deepEqual(headersOf(request('X: \t a  b \t', 'Y:\xa0v\xa0', 'Z: caf\xe9', 'W:\t')), {
      host: 'a',
      x: 'a  b',
      y: '\xa0v\xa0',
      z: 'caf\xe9',
      w: '',
    });
  });

  test('__proto__, constructor and other Object.prototype names are ordinary headers', () => {
    const headers = accepted(request('__proto__: x', 'Constructor: y', 'hasOwnProperty: z', 'toString: t', 'valueOf: v')).head.headers;
    assertInheritsNothing(headers);
    assert.equal('toString' in accepted(request()).head.headers, false);
    assert.deepEqual(Object.keys(headers), ['host', '__proto__', 'constructor', 'hasownproperty', 'tostring', 'valueof']);
    assert.equal(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value, 'x');
    assert.equal(headers['constructor'], 'y');
    assert.equal(headers['hasownproperty'], 'z');
    // Nothing leaked into the shared prototype.
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'hasownproperty'), false);
    assert.equal(typeof ({}).constructor, 'function');
    // A repeated one is joined, not merged into something else.
    assert.equal(accepted(request('__proto__: a', '__proto__: b')).head.headers['__proto__'], 'a, b');
  });

  test('empty lines before the request line are skipped (RFC 9112 section 2.2) and counted in the length', () => {
    const text = '\r\n\r\n' + request();
    const result = accepted(text);
    assert.equal(result.length, text.length);
    assert.equal(result.head.method, 'GET');
  });

  test('HTTP/1.0 needs no Host; a later 1.x minor version is read as it is', () => {
    assert.deepEqual({ ...accepted('GET / HTTP/1.0\r\n\r\n').head.headers }, {});
    assert.equal(accepted('GET / HTTP/1.2\r\nHost: a\r\n\r\n').head.httpVersion, '1.2');
  });

  test('request targets in every form, and methods up to 32 token characters', () => {
    for (const target of ['/', '/a/b?c=d&e=%20', '*', 'http://example.com/x', 'example.com:443', "/!$&'()*+,;=:@~-._"]) {
      assert.equal(accepted(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`).head.url, target);
    }
    const method = "A!#$%&'*+-.^_`|~0123456789zzzzzz";
    assert.equal(method.length, 32);
    assert.equal(accepted(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`).head.method, method);
  });
});

describe('parseRequestHead: incomplete heads and splits', () => {
  const text = request('Upgrade: websocket', 'X: a b');

  test('null for every proper prefix, the head once complete', () => {
    for (let i = 0; i < text.length; i++) assert.equal(parse(text.slice(0, i)), null, `prefix ${i}`);
    assert.ok(parse(text)?.ok);
  });

  test('RequestHeadParser: any two-way and the byte-by-byte split give the one-shot result', () => {
    const whole = parse(text);
    for (let cut = 0; cut <= text.length; cut++) {
      const parser = new RequestHeadParser();
      const first = parser.push(bytes(text.slice(0, cut)));
      if (cut < text.length) assert.equal(first, null, `cut ${cut}`);
      assert.deepEqual(parser.push(bytes(text.slice(cut))), whole, `cut ${cut}`);
    }
    const parser = new RequestHeadParser();
    let result: RequestHeadResult | null = null;
    for (let i = 0; i < text.length; i++) result = parser.push(bytes(text[i]!));
    assert.deepEqual(result, whole);
    assert.deepEqual(parser.push(bytes('more')), whole, 'the result stays');
  });

  test('RequestHeadParser: a refusal comes with the first byte that causes it, whatever the split', () => {
    const bad = 'GET / HTTP/1.1\r\nHost: a\r\nX: a\vb';
    for (let cut = 0; cut < bad.length; cut++) {
      const parser = new RequestHeadParser();
      const first = parser.push(bytes(bad.slice(0, cut)));
      const second = parser.push(bytes(bad.slice(cut)));
      const result = first ?? second;
      assert.ok(result !== null && !result.ok && result.status === 400, `cut ${cut}`);
    }
  });

  test('RequestHeadParser: length counts from the first byte pushed', () => {
    const parser = new RequestHeadParser();
    assert.equal(parser.push(bytes(text.slice(0, 10))), null);
    const result = parser.push(bytes(text.slice(10) + 'rest'));
    assert.ok(result?.ok);
    assert.equal(result.length, text.length);
  });
});

describe('parseRequestHead: refusals (RFC 9112)', () => {
  test('malformed request lines: 400', () => {
    for (const line of [
      'GET /',
      'GET / HTTP/1.1 extra',
      'GET  / HTTP/1.1', // two SP
      'GET /  HTTP/1.1',
      'GET\t/ HTTP/1.1', // only SP separates
      ' GET / HTTP/1.1',
      'GET / HTTP/1.1 ',
      'GET  HTTP/1.1', // empty target
      'GET / http/1.1', // HTTP-name is case-sensitive
      'GET / HTTP/11',
      'GET / HTTP/1.x',
      'GET / HTTP/1.1.1',
      'GET / HTTP/1',
      'G(T / HTTP/1.1',
      'GET: / HTTP/1.1',
      'G\xc9T / HTTP/1.1',
      'GET /a b HTTP/1.1',
      'GET /\x01 HTTP/1.1',
      'GET /\x7f HTTP/1.1',
      'GET /caf\xe9 HTTP/1.1', // a request-target is ASCII
      'GET /\t HTTP/1.1',
    ]) {
      assert.equal(refusal(`${line}\r\nHost: a\r\n\r\n`).status, 400, JSON.stringify(line));
    }
  });

  test('invalid method or header name characters: 400 at once', () => {
    assert.equal(refusal('GE"T').status, 400);
    assert.equal(refusal('GET / HTTP/1.1\r\nX"Y').status, 400);
    assert.equal(refusal('GET / HTTP/1.1\r\nX\xe9').status, 400);
    assert.equal(refusal('GET / HTTP/1.1\r\nX@Y: 1').status, 400);
    assert.equal(refusal('GET / HTTP/1.1\r\n: empty name').reason, 'empty header name');
    assert.equal(refusal('GET / HTTP/1.1\r\nNo colon\r\n\r\n').status, 400);
    assert.equal(refusal('GET / HTTP/1.1\r\nNoColon\r\n\r\n').reason, 'header line without a colon');
  });

  test('whitespace between a header name and its colon: 400 (RFC 9112 section 5.1)', () => {
    for (const line of ['Host : a', 'X\t: a', 'X  :a']) {
      assert.deepEqual(refusal(`GET / HTTP/1.1\r\n${line}\r\n\r\n`), { status: 400, reason: 'whitespace between header name and colon' }, line);
    }
  });

  test('obsolete line folding and whitespace before the first header: 400', () => {
    assert.deepEqual(refusal(request('X: a', ' b')), { status: 400, reason: 'obsolete line folding is not accepted' });
    assert.deepEqual(refusal(request('X: a', '\tb')), { status: 400, reason: 'obsolete line folding is not accepted' });
    assert.deepEqual(refusal('GET / HTTP/1.1\r\n Host: a\r\n\r\n'), { status: 400, reason: 'whitespace before the first header' });
  });

  test('a bare LF or a bare CR anywhere: 400, before the head is complete', () => {
    for (const text of [
      '\nGET / HTTP/1.1',
      '\rGET / HTTP/1.1',
      'GET / HTTP/1.1\n',
      'GET / HTTP/1.1\rHost: a',
      'GET /\n',
      'GET / HTTP/1.1\r\nHost: a\n',
      'GET / HTTP/1.1\r\nHost: a\rb',
      'GET / HTTP/1.1\r\nHost: a\r\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\n\n',
      'GET / HTTP/1.1\r\nHost: a\r\n\rX',
      'GET / HTTP/1.1\r\nHost:\n',
      'GET / HTTP/1.1\r\nHost:\r ',
      'GET / HTTP/1.1\r\nHost: a\r\nX\n',
    ]) {
      assert.equal(refusal(text).status, 400, JSON.stringify(text));
    }
  });

  test('control characters in a value, where trim() would strip them or inside: 400', () => {
    const controls = [...Array(32).keys()].filter((c) => c !== 0x09 && c !== 0x0a && c !== 0x0d).concat(0x7f);
    for (const c of controls) {
      const ch = String.fromCharCode(c);
      for (const value of [`${ch}a`, `a${ch}`, `a${ch}b`, ch, ` ${ch} `]) {
        assert.deepEqual(refusal(`GET / HTTP/1.1\r\nHost: a\r\nX: ${value}`), { status: 400, reason: 'control character in a header value' }, `0x${c.toString(16)} in ${JSON.stringify(value)}`);
      }
    }
    // Every byte from 0x80 to 0xff is obs-text: accepted as part of the value.
    for (let c = 0x80; c <= 0xff; c++) {
      const ch = String.fromCharCode(c);
      assert.equal(accepted(request(`X: ${ch}a${ch}`)).head.headers['x'], `${ch}a${ch}`);
    }
  });

  test('a repeated Host (in any case): 400; HTTP/1.1 without Host: 400 (RFC 9112 section 3.2)', () => {
    assert.deepEqual(refusal(request('Host: a')), { status: 400, reason: 'duplicate Host header' });
    assert.deepEqual(refusal(request('HOST: b')), { status: 400, reason: 'duplicate Host header' });
    assert.deepEqual(refusal(request('host:')), { status: 400, reason: 'duplicate Host header' });
    assert.deepEqual(refusal('GET / HTTP/1.1\r\nX: a\r\n\r\n'), { status: 400, reason: 'missing Host header' });
  });

  test('a Host value that is not uri-host [":" port]: 400', () => {
    for (const host of ['a b', 'a/b', 'a@b', 'a:b', 'a:80:90', '[::1', '::1', '[]', '[::1]x', '[::1]:8a', 'caf\xe9', 'a%2', 'a%zz', 'a"b', 'a\\b', '[a%20]']) {
      assert.deepEqual(refusal(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`), { status: 400, reason: 'invalid Host header' }, host);
    }
    for (const host of ['example.com', 'example.com:8080', 'localhost:', '127.0.0.1:1', '[::1]', '[::1]:80', '[v1.x:y]', 'a%20b', "!$&'()*+,;=-._~", '']) {
      assert.equal(accepted(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`).head.headers['host'], host);
      assert.equal(isValidHost(host), true, host);
    }
  });

  test('ambiguous body framing: 400 (RFC 9112 section 6)', () => {
    for (const lines of [
      ['Content-Length: abc'],
      ['Content-Length: -1'],
      ['Content-Length: +1'],
      ['Content-Length: 1 1'],
      ['Content-Length: 1, 1'],
      ['Content-Length: 1', 'Content-Length: 1'],
      ['Content-Length:'],
      ['Transfer-Encoding: chunked', 'Content-Length: 0'],
      ['Transfer-Encoding: gzip'],
      ['Transfer-Encoding: chunked, gzip'],
    ]) {
      assert.equal(refusal(request(...lines)).status, 400, lines.join(' / '));
    }
    assert.deepEqual(refusal('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'), { status: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' });
    accepted(request('Content-Length: 0'));
    accepted(request('Content-Length: 12'));
    accepted(request('Transfer-Encoding: gzip, Chunked'));
  });

  test('an HTTP major version other than 1: 505; a method over 32 bytes: 501', () => {
    for (const version of ['0.9', '2.0', '3.1', '9.9']) {
      assert.equal(refusal(`GET / HTTP/${version}\r\nHost: a\r\n\r\n`).status, 505, version);
    }
    assert.equal(refusal('A'.repeat(33)).status, 501, 'refused before the method ends');
  });
});

describe('parseRequestHead: limits', () => {
  test('the documented defaults', () => {
    assert.equal(DEFAULT_MAX_HEAD_SIZE, 16 * 1024);
    assert.equal(DEFAULT_MAX_TARGET_LENGTH, 8 * 1024);
    assert.equal(DEFAULT_MAX_HEADER_COUNT, 100);
  });

  test('a head over maxHeadSize: 431 as soon as one byte too many arrives, complete or not', () => {
    const exact = request(`X: ${'a'.repeat(100)}`);
    accepted(exact, exact.length);
    accepted(exact, { maxHeadSize: exact.length });
    assert.deepEqual(refusal(exact, exact.length - 1), { status: 431, reason: 'request head too large' });
    assert.equal(parse(exact.slice(0, 50), 50), null, 'exactly the limit, incomplete: wait');
    assert.equal(refusal(exact.slice(0, 51), 50).status, 431);
    assert.equal(refusal(`GET / HTTP/1.1\r\nX: ${'a'.repeat(DEFAULT_MAX_HEAD_SIZE)}`).status, 431, 'the default');
    accepted(request(`X: ${'a'.repeat(DEFAULT_MAX_HEAD_SIZE - 100)}`));
    // Bytes after a complete head do not count.
    accepted(exact + 'x'.repeat(1000), exact.length);
  });

  test('more than maxHeaderCount header lines: 431, at the first line too many', () => {
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `X${i}: v`);
    accepted(request(...lines(DEFAULT_MAX_HEADER_COUNT - 1)));
    assert.deepEqual(refusal(request(...lines(DEFAULT_MAX_HEADER_COUNT))), { status: 431, reason: 'too many headers' });
    accepted(request(...lines(4)), { maxHeaderCount: 5 });
    assert.equal(refusal(`GET / HTTP/1.1\r\nHost: a\r\n${lines(5).join('\r\n')}\r\nX`, { maxHeaderCount: 5 }).status, 431);
  });

  test('a request target over maxTargetLength: 414, as soon as the target is too long', () => {
    const target = (n: number) => '/' + 'a'.repeat(n - 1);
    accepted(`GET ${target(DEFAULT_MAX_TARGET_LENGTH)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    assert.deepEqual(refusal(`GET ${target(DEFAULT_MAX_TARGET_LENGTH + 1)}`), { status: 414, reason: 'request target too long' });
    accepted(`GET ${target(10)} HTTP/1.1\r\nHost: a\r\n\r\n`, { maxTargetLength: 10 });
    assert.equal(refusal(`GET ${target(11)} HTTP/1.1\r\nHost: a\r\n\r\n`, { maxTargetLength: 10 }).status, 414);
    // A target that the head size limit cuts is too long as well.
    assert.equal(refusal(`GET ${target(300)}`, 100).status, 414);
  });
});

test('trimOws removes SP and HTAB only', () => {
  assert.equal(trimOws(' \t a b \t '), 'a b');
  assert.equal(trimOws('\va\f'), '\va\f');
  assert.equal(trimOws('\xa0a\xa0'), '\xa0a\xa0');
  assert.equal(trimOws('   '), '');
  assert.equal(trimOws('x'), 'x');
});
