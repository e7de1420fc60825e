import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchPath, matchPathCaptures, requestPath } from '../../src/http/match.js';
import { parseAddress, urlHost } from '../../src/http/address.js';
import { HttpAppError } from '../../src/http/errors.js';

test('exact patterns match only the same path', () => {
  assert.equal(matchPath('/', '/'), true);
  assert.equal(matchPath('/chat', '/chat'), true);
  assert.equal(matchPath('/chat', '/chat/'), false);
  assert.equal(matchPath('/chat', '/Chat'), false);
  assert.equal(matchPath('/chat', '/chatroom'), false);
  assert.equal(matchPath('/chat', '/'), false);
});

test('the query string and fragment are ignored', () => {
  assert.equal(matchPath('/chat', '/chat?room=1'), true);
  assert.equal(matchPath('/chat', '/chat#top'), true);
  assert.equal(matchPath('/chat', '/chat?x=/y'), true);
  assert.deepEqual(matchPathCaptures('/a/*', '/a/b?c=d'), ['b']);
});

test('wildcards match any run of characters, slashes included', () => {
  assert.equal(matchPath('/*', '/'), true);
  assert.equal(matchPath('/*', '/a/b/c'), true);
  assert.equal(matchPath('*', ''), true);
  assert.equal(matchPath('/static/*', '/static/'), true);
  assert.equal(matchPath('/static/*', '/static'), false);
  assert.equal(matchPath('/static/*', '/other/x'), false);
  assert.equal(matchPath('/api/*/info', '/api/42/info'), true);
  assert.equal(matchPath('/api/*/info', '/api/a/b/info'), true);
  assert.equal(matchPath('/api/*/info', '/api/42/infos'), false);
  assert.equal(matchPath('/*.css', '/site.css'), true);
  assert.equal(matchPath('/*.css', '/site.js'), false);
});

test('captures give what each wildcard matched', () => {
  assert.deepEqual(matchPathCaptures('/static/*', '/static/css/a.css'), ['css/a.css']);
  assert.deepEqual(matchPathCaptures('/api/*/info', '/api/a/b/info'), ['a/b']);
  assert.deepEqual(matchPathCaptures('/*/x/*', '/a/x/b/x/c'), ['a', 'b/x/c']);
  assert.deepEqual(matchPathCaptures('/a**', '/abc'), ['', 'bc']);
  assert.deepEqual(matchPathCaptures('/exact', '/exact'), []);
  assert.equal(matchPathCaptures('/exact', '/other'), null);
});

test('a hostile path against many wildcards stays fast', () => {
  const pattern = '/*a*a*a*a*a*a*a*a*b';
  const path = '/' + 'a'.repeat(20_000);
  const started = performance.now();
  assert.equal(matchPath(pattern, path), false);
  assert.ok(performance.now() - started < 2000);
});

test('requestPath handles origin-form and absolute-form targets', () => {
  assert.equal(requestPath('/a/b?c'), '/a/b');
  assert.equal(requestPath('http://example.com/a/b?c'), '/a/b');
  assert.equal(requestPath('*'), '*');
});

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

test('urlHost turns bound addresses into connectable URL hosts', () => {
  assert.equal(urlHost('0.0.0.0'), '127.0.0.1');
  assert.equal(urlHost('::'), '[::1]');
  assert.equal(urlHost('::1'), '[::1]');
  assert.equal(urlHost('127.0.0.1'), '127.0.0.1');
  assert.equal(urlHost('localhost'), 'localhost');
});
