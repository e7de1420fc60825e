import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/http/address.js';
import { HttpAppError } from '../../src/http/errors.js';

test('parseAddress accepts the documented forms', () => {
  assert.deepEqual(parseAddress('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseAddress('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
  assert.deepEqual(parseAddress('localhost:3000'), { host: 'localhost', port: 3000 });
  assert.deepEqual(parseAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseAddress(':8080'), { host: undefined, port: 8080 });
  assert.deepEqual(parseAddress('8080'), { host: undefined, port: 8080 });
  assert.deepEqual(parseAddress(0), { host: undefined, port: 0 });
});

test('parseAddress rejects bad addresses with HTTP_ERR_BAD_ADDRESS', () => {
  for (const bad of ['', 'localhost', '::1:80', '[::1]', '[::1]80', '[nope]:80', 'a b:80', 'host:', 'host:65536', 'host:-1', 'host:8o', 70000, -1, 1.5]) {
    assert.throws(
      () => parseAddress(bad),
      (error: unknown) => error instanceof HttpAppError && error.code === 'HTTP_ERR_BAD_ADDRESS',
      `expected ${JSON.stringify(bad)} to be rejected`,
    );
  }
});

