import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseRequestHead } from '../../src/protocol/http1.js';

const head = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('parseRequestHead', () => {
  test('parses a request head, lower-cases names and joins duplicates', () => {
    const text = 'GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nX-Empty:\r\n\r\nextra';
    const result = parseRequestHead(head(text));
    assert.ok(result !== null && result.ok);
    assert.equal(result.length, text.length - 'extra'.length);
    assert.deepEqual(result.head, {
      method: 'GET',
      url: '/chat?x=1',
      httpVersion: '1.1',
      headers: { host: 'example.com', upgrade: 'websocket', connection: 'keep-alive, Upgrade', 'x-empty': '' },
    });
  });

  test('waits for the blank line, at every split', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    for (let i = 0; i < text.length; i++) assert.equal(parseRequestHead(head(text.slice(0, i))), null, `prefix ${i}`);
    assert.ok(parseRequestHead(head(text))?.ok);
  });

  test('refuses malformed heads with 400', () => {
    for (const text of [
      'GET /\r\n\r\n',
      'GET / HTTP/1.1 extra\r\n\r\n',
      'G(T / HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nNo colon\r\n\r\n',
      'GET / HTTP/1.1\r\n: empty name\r\n\r\n',
      'GET / HTTP/1.1\r\nBad Name: x\r\n\r\n',
      'GET / HTTP/1.1\r\n folded: x\r\n\r\n',
      'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n',
    ]) {
      const result = parseRequestHead(head(text));
      assert.ok(result !== null && !result.ok, JSON.stringify(text));
      assert.equal(result.status, 400, JSON.stringify(text));
    }
  });

  test('refuses heads over the size limit with 431, complete or not', () => {
    const big = `GET / HTTP/1.1\r\nX: ${'a'.repeat(200)}\r\n\r\n`;
    assert.deepEqual(parseRequestHead(head(big), 100), { ok: false, status: 431, reason: 'request head too large' });
    assert.equal(parseRequestHead(head('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(200)), 100)?.ok, false);
    const many = `GET / HTTP/1.1\r\n${Array.from({ length: 101 }, (_, i) => `X${i}: v`).join('\r\n')}\r\n\r\n`;
    assert.equal((parseRequestHead(head(many)) as { status: number }).status, 431);
  });
});
