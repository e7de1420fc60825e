import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchPath, matchPathCaptures, requestPath } from '../../src/util/path.js';

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

