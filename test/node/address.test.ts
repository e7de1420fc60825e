import { test } from 'node:test';
import assert from 'node:assert/strict';
import { urlHost } from '../../src/node/address.js';

test('urlHost turns bound addresses into connectable URL hosts', () => {
  assert.equal(urlHost('0.0.0.0'), '127.0.0.1');
  assert.equal(urlHost('::'), '[::1]');
  assert.equal(urlHost('::1'), '[::1]');
  assert.equal(urlHost('127.0.0.1'), '127.0.0.1');
  assert.equal(urlHost('localhost'), 'localhost');
});
