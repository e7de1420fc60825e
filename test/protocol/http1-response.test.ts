// The client's response-head parser and refusal-body reader (src/protocol/http1-response.ts),
// on bytes: valid heads, each malformed form, limits, and bodies split at every byte.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseResponseHead, ResponseBodyReader } from '../../src/protocol/http1-response.js';

const head = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('parseResponseHead', () => {
  test('reads the status, the reason, the version and the headers, and says how long the head was', () => {
    const bytes = head('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection:Upgrade\r\nX-A: 1\r\nx-a:  2 \r\n\r\n\x81\x00');
    const result = parseResponseHead(bytes);
    assert.ok(result !== null && result.ok);
    assert.equal(result.head.status, 101);
    assert.equal(result.head.statusText, 'Switching Protocols');
    assert.equal(result.head.httpVersion, '1.1');
    assert.equal(result.head.headers['upgrade'], 'websocket');
    assert.equal(result.head.headers['connection'], 'Upgrade');
    assert.equal(result.head.headers['x-a'], '1, 2');
    assert.equal(result.length, bytes.length - 2);
    assert.equal(Object.getPrototypeOf(Object.getPrototypeOf(result.head.headers)), null);
  });

  test('set-cookie stays a list; __proto__ is an ordinary header; an empty reason is allowed', () => {
    const result = parseResponseHead(head('HTTP/1.0 403 \r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n__proto__: x\r\n\r\n'));
    assert.ok(result !== null && result.ok);
    assert.deepEqual(result.head.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(result.head.headers['__proto__'], 'x');
    assert.equal(result.head.statusText, '');
    assert.equal(result.head.httpVersion, '1.0');
  });

  test('is null while incomplete, at every split point', () => {
    const full = head('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    for (let i = 0; i < full.length; i++) assert.equal(parseResponseHead(full.subarray(0, i)), null, `prefix ${i}`);
    assert.ok(parseResponseHead(full)?.ok);
  });

  test('refuses malformed heads with a reason', () => {
    for (const text of [
      'HTTP/2 101 x\r\n\r\n',
      'HTTP/1.1 1011 x\r\n\r\n',
      'HTTP/1.1 101x\r\n\r\n',
      'http/1.1 101 x\r\n\r\n',
      'HTTP/1.1 101 x\r\nUpgrade websocket\r\n\r\n',
      'HTTP/1.1 101 x\r\nUp grade: websocket\r\n\r\n',
      'HTTP/1.1 101 x\r\nUpgrade: web\x00socket\r\n\r\n',
      'HTTP/1.1 101 x\r\nUpgrade: websocket\r\n folded\r\n\r\n',
      'HTTP/1.1 101 x\r\nUpgrade: a\rb\r\n\r\n',
      'HTTP/1.1 101 x\nUpgrade: websocket\r\n\r\n',
      'garbage\r\n\r\n',
    ]) {
      const result = parseResponseHead(head(text));
      assert.ok(result !== null && !result.ok, JSON.stringify(text));
      assert.equal(typeof result.reason, 'string');
    }
  });

  test('a head over the limit is refused without waiting for its end', () => {
    const endless = head(`HTTP/1.1 101 x\r\n${'X-Pad: yyyyyyyyyyyyyyyy\r\n'.repeat(1000)}`);
    const result = parseResponseHead(endless, 16 * 1024);
    assert.ok(result !== null && !result.ok);
    assert.match(result.reason, /over 16384 bytes/);
    const complete = head(`HTTP/1.1 101 x\r\n${'X-Pad: yyyyyyyyyyyyyyyy\r\n'.repeat(1000)}\r\n`);
    assert.equal(parseResponseHead(complete, 16 * 1024)?.ok, false);
  });
});

describe('ResponseBodyReader', () => {
  const feed = (reader: ResponseBodyReader, bytes: Buffer, step: number): boolean => {
    let done = false;
    for (let i = 0; i < bytes.length && !done; i += step) done = reader.push(bytes.subarray(i, i + step));
    return done;
  };

  test('Content-Length: exactly that many bytes, however split', () => {
    for (const step of [1, 2, 3, 7, 100]) {
      const reader = new ResponseBodyReader(401, { 'content-length': '11' }, 1024);
      assert.equal(feed(reader, Buffer.from('hello worldEXTRA'), step), true);
      assert.equal(reader.text, 'hello world');
    }
  });

  test('chunked: decoded with extensions and trailers, however split', () => {
    const wire = Buffer.from('5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\nAFTER');
    for (const step of [1, 2, 3, 5, 8, 1000]) {
      const reader = new ResponseBodyReader(403, { 'transfer-encoding': 'chunked' }, 1024);
      assert.equal(feed(reader, wire, step), true, `step ${step}`);
      assert.equal(reader.text, 'hello world', `step ${step}`);
    }
  });

  test('kept bytes stop at the limit; no framing means until the end; 204 and 304 have none', () => {
    const capped = new ResponseBodyReader(500, { 'transfer-encoding': 'chunked' }, 8);
    assert.equal(capped.push(Buffer.from('20\r\n' + 'z'.repeat(32) + '\r\n')), true);
    assert.equal(capped.text, 'zzzzzzzz');
    const open = new ResponseBodyReader(400, {}, 1024);
    assert.equal(open.push(Buffer.from('partial ')), false);
    assert.equal(open.push(Buffer.from('body')), false);
    open.end();
    assert.equal(open.complete, true);
    assert.equal(open.text, 'partial body');
    assert.equal(new ResponseBodyReader(204, {}, 1024).complete, true);
    assert.equal(new ResponseBodyReader(304, { 'content-length': '10' }, 1024).complete, true);
  });
});
