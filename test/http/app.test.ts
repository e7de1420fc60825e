import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { App, HttpAppError, HttpResponse, serveDir, serveFile } from '../../src/http/app.js';

const fixtures = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const certPath = join(fixtures, 'cert.pem');
const keyPath = join(fixtures, 'key.pem');
const cert = readFileSync(certPath);
const key = readFileSync(keyPath, 'utf8');

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** Sends `text` on a plain TCP socket (so no client rewrites the path) and reads until close. */
function rawExchange(port: number, text: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(parseRaw(Buffer.concat(chunks).toString('latin1'))));
    socket.write(text);
  });
}

function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: end === -1 ? '' : raw.slice(end + 4), raw };
}

function rawGet(port: number, target: string, method = 'GET'): Promise<RawResponse> {
  return rawExchange(port, `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
}

interface SimpleResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function collect(res: IncomingMessage): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('error', reject);
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
  });
}

function httpsGet(url: string, host = 'localhost'): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: cert, servername: host, agent: false }, (res) => collect(res).then(resolve, reject));
    req.on('error', reject);
    req.end();
  });
}

function httpHead(url: string): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'HEAD', agent: false }, (res) => collect(res).then(resolve, reject));
    req.on('error', reject);
    req.end();
  });
}

async function started<State>(app: App<State>): Promise<App<State>> {
  await app.run('127.0.0.1:0');
  return app;
}

describe('routes', () => {
  let app: App<{ hits: number }>;
  before(async () => {
    app = await started(
      new App({ hits: 0 })
        .withRoute('/', () => 'root')
        .withRoute('/hello', (request) => `hello ${request.query.get('name') ?? 'nobody'}`)
        .withRoute('/count', (_request, state) => String(++state.hits))
        .withStatelessRoute('/stateless', (request) => `stateless ${request.method}`)
        .withRoute('/api/*/info', (request) => HttpResponse.json({ wildcards: request.wildcards, route: request.route }))
        .withRoute('/order/first', () => 'first exact')
        .withRoute('/order/*', () => 'wildcard')
        .withRoute('/order/second', () => 'never reached'),
    );
  });
  after(() => app.close());

  test('exact paths, with the query string ignored for matching', async () => {
    assert.equal(await (await fetch(`${app.url}/`)).text(), 'root');
    const res = await fetch(`${app.url}/hello?name=ada`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(await res.text(), 'hello ada');
    assert.equal((await fetch(`${app.url}/hello/`)).status, 404);
  });

  test('wildcards capture and the first registered match wins', async () => {
    assert.deepEqual(await (await fetch(`${app.url}/api/a/b/info`)).json(), { wildcards: ['a/b'], route: '/api/*/info' });
    assert.equal(await (await fetch(`${app.url}/order/first`)).text(), 'first exact');
    assert.equal(await (await fetch(`${app.url}/order/second`)).text(), 'wildcard');
    assert.equal(await (await fetch(`${app.url}/order/`)).text(), 'wildcard');
  });

  test('state is shared by stateful handlers; stateless routes work', async () => {
    assert.equal(await (await fetch(`${app.url}/count`)).text(), '1');
    assert.equal(await (await fetch(`${app.url}/count`)).text(), '2');
    assert.equal(app.state.hits, 2);
    assert.equal(await (await fetch(`${app.url}/stateless`, { method: 'POST' })).text(), 'stateless POST');
  });

  test('no matching route gives 404', async () => {
    const res = await fetch(`${app.url}/missing`);
    assert.equal(res.status, 404);
    assert.equal(await res.text(), '404 Not Found');
  });

  test('a pattern that can never match is refused at registration', () => {
    for (const register of [
      (app: App) => app.withRoute('static/*', () => ''),
      (app: App) => app.withStatelessRoute('', () => ''),
      (app: App) => app.withWebsocketRoute('ws', () => {}),
    ]) {
      assert.throws(() => register(new App()), (error: unknown) => (error as HttpAppError).code === 'HTTP_ERR_BAD_ROUTE');
    }
  });

  test('withState replaces the state', async () => {
    const other = await started(new App<string>().withState('from withState').withRoute('/', (_r, state) => state));
    try {
      assert.equal(await (await fetch(`${other.url}/`)).text(), 'from withState');
    } finally {
      await other.close();
    }
  });
});

describe('errors and responses', () => {
  const reported: Array<{ error: unknown; url: string | undefined }> = [];
  let app: App;
  before(async () => {
    app = await started(
      new App()
        .withErrorHandler((error, request) => reported.push({ error, url: request?.url }))
        .withRoute('/throw', () => {
          throw new Error('sync boom');
        })
        .withRoute('/reject', async () => {
          await Promise.resolve();
          throw new Error('async boom');
        })
        .withRoute('/bad', () => 42 as unknown as string)
        .withRoute('/whatwg', () => {
          const headers = new Headers({ 'content-type': 'application/x-test', 'x-custom': 'yes' });
          headers.append('set-cookie', 'a=1');
          headers.append('set-cookie', 'b=2');
          return new Response('created!', { status: 201, headers });
        })
        .withRoute('/whatwg-stream', () => new Response(new Blob(['streamed ', 'body']).stream()))
        .withRoute('/string', () => 'plain text ✓')
        .withRoute('/buffer', () => Buffer.from([0, 1, 2, 255]))
        .withRoute('/json', () => HttpResponse.json({ ok: true }, 202).withHeader('Cache-Control', 'no-store'))
        .withRoute('/readable', () => HttpResponse.stream(Readable.from(['a', 'b', 'c']), 'text/plain'))
        .withRoute('/redirect', () => HttpResponse.redirect('/string'))
        .withRoute('/empty', () => HttpResponse.empty())
        .withRoute('/echo', async (request) => {
          const body = (await request.json()) as { n: number };
          return HttpResponse.json({
            n: body.n + 1,
            method: request.method,
            path: request.path,
            query: request.query.get('q'),
            header: request.headers['x-test'],
            remote: request.remoteAddress,
          });
        })
        .withMaxBodySize(64),
    );
  });
  after(() => app.close());

  test('a throwing handler gives 500, is reported, and the server keeps serving', async () => {
    reported.length = 0;
    const res = await fetch(`${app.url}/throw`);
    assert.equal(res.status, 500);
    assert.equal(await res.text(), '500 Internal Server Error');
    const rejected = await fetch(`${app.url}/reject?x=1`);
    assert.equal(rejected.status, 500);
    await rejected.text();
    assert.equal(reported.length, 2);
    assert.equal((reported[0]!.error as Error).message, 'sync boom');
    assert.equal(reported[0]!.url, '/throw');
    assert.equal((reported[1]!.error as Error).message, 'async boom');
    assert.equal(reported[1]!.url, '/reject?x=1');
    assert.equal((await fetch(`${app.url}/string`)).status, 200);
  });

  test('a handler returning something unusable gives 500 HTTP_ERR_BAD_RESPONSE', async () => {
    reported.length = 0;
    const res = await fetch(`${app.url}/bad`);
    assert.equal(res.status, 500);
    await res.text();
    assert.ok(reported[0]!.error instanceof HttpAppError);
    assert.equal((reported[0]!.error as HttpAppError).code, 'HTTP_ERR_BAD_RESPONSE');
  });

  test('a WHATWG Response is sent with its status, headers and body', async () => {
    const res = await fetch(`${app.url}/whatwg`);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('content-type'), 'application/x-test');
    assert.equal(res.headers.get('x-custom'), 'yes');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(await res.text(), 'created!');
    assert.equal(await (await fetch(`${app.url}/whatwg-stream`)).text(), 'streamed body');
  });

  test('string, Buffer and HttpResponse bodies', async () => {
    const text = await fetch(`${app.url}/string`);
    assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(text.headers.get('content-length'), String(Buffer.byteLength('plain text ✓')));
    assert.equal(await text.text(), 'plain text ✓');

    const bytes = await fetch(`${app.url}/buffer`);
    assert.equal(bytes.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await bytes.arrayBuffer()), Buffer.from([0, 1, 2, 255]));

    const json = await fetch(`${app.url}/json`);
    assert.equal(json.status, 202);
    assert.equal(json.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(json.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await json.json(), { ok: true });

    assert.equal(await (await fetch(`${app.url}/readable`)).text(), 'abc');
    const redirect = await fetch(`${app.url}/redirect`, { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/string');
    assert.equal((await fetch(`${app.url}/empty`)).status, 204);
  });

  test('HEAD gets the headers of GET without a body', async () => {
    const res = await httpHead(`${app.url}/string`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(Buffer.byteLength('plain text ✓')));
    assert.equal(res.body.length, 0);
  });

  test('the request exposes method, path, query, headers, body and peer address', async () => {
    const res = await fetch(`${app.url}/echo?q=search`, {
      method: 'POST',
      headers: { 'x-test': 'header value', 'content-type': 'application/json' },
      body: JSON.stringify({ n: 41 }),
    });
    assert.deepEqual(await res.json(), {
      n: 42,
      method: 'POST',
      path: '/echo',
      query: 'search',
      header: 'header value',
      remote: '127.0.0.1',
    });
  });

  test('a body over the limit gives 413 and invalid JSON gives 400, neither reported', async () => {
    reported.length = 0;
    const big = await fetch(`${app.url}/echo`, { method: 'POST', body: 'x'.repeat(1000) });
    assert.equal(big.status, 413);
    await big.text();
    const bad = await fetch(`${app.url}/echo`, { method: 'POST', body: '{nope' });
    assert.equal(bad.status, 400);
    await bad.text();
    assert.equal(reported.length, 0);
  });
});

describe('static files', () => {
  const root = mkdtempSync(join(tmpdir(), 'humphrey-http-'));
  const publicDir = join(root, 'public');
  let app: App;
  const files: Record<string, [string, string]> = {
    'index.html': ['<h1>home</h1>', 'text/html; charset=utf-8'],
    'style.css': ['body{}', 'text/css; charset=utf-8'],
    'app.js': ['console.log(1)', 'text/javascript; charset=utf-8'],
    'mod.mjs': ['export {}', 'text/javascript; charset=utf-8'],
    'data.json': ['{"a":1}', 'application/json; charset=utf-8'],
    'logo.svg': ['<svg/>', 'image/svg+xml'],
    'pic.png': ['PNG', 'image/png'],
    'photo.JPG': ['JPG', 'image/jpeg'],
    'favicon.ico': ['ICO', 'image/x-icon'],
    'notes.txt': ['notes', 'text/plain; charset=utf-8'],
    'code.wasm': ['WASM', 'application/wasm'],
    'app.js.map': ['{}', 'application/json; charset=utf-8'],
    'blob.bin': ['BIN', 'application/octet-stream'],
    'with space.txt': ['spaced', 'text/plain; charset=utf-8'],
  };

  before(async () => {
    mkdirSync(join(publicDir, 'sub'), { recursive: true });
    mkdirSync(join(publicDir, 'empty'), { recursive: true });
    for (const [name, [content]] of Object.entries(files)) writeFileSync(join(publicDir, name), content);
    writeFileSync(join(publicDir, 'sub', 'index.html'), '<h1>sub</h1>');
    writeFileSync(join(publicDir, '.env'), 'SECRET=1');
    writeFileSync(join(root, 'package.json'), 'TOP SECRET OUTSIDE');
    writeFileSync(join(root, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
    app = await started(
      new App()
        .withRoute('/static/*', serveDir(publicDir))
        .withRoute('/big.bin', serveFile(join(root, 'big.bin')))
        .withRoute('/gone', serveFile(join(root, 'does-not-exist'))),
    );
  });
  after(async () => {
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('files are served with the content type of their extension', async () => {
    for (const [name, [content, type]] of Object.entries(files)) {
      const res = await fetch(`${app.url}/static/${encodeURIComponent(name)}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get('content-type'), type, name);
      assert.equal(res.headers.get('content-length'), String(content.length), name);
      assert.equal(await res.text(), content, name);
    }
  });

  test('a directory serves its index.html; without a slash it redirects', async () => {
    assert.equal(await (await fetch(`${app.url}/static/`)).text(), '<h1>home</h1>');
    assert.equal(await (await fetch(`${app.url}/static/sub/`)).text(), '<h1>sub</h1>');
    const redirect = await fetch(`${app.url}/static/sub?x=1`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/static/sub/?x=1');
    assert.equal((await fetch(`${app.url}/static/empty/`)).status, 404);
  });

  test('missing files, dotfiles and other methods', async () => {
    assert.equal((await fetch(`${app.url}/static/nope.txt`)).status, 404);
    assert.equal((await fetch(`${app.url}/static/sub/nope/deeper.css`)).status, 404);
    assert.equal((await fetch(`${app.url}/static/.env`)).status, 404);
    assert.equal((await fetch(`${app.url}/gone`)).status, 404);
    const post = await fetch(`${app.url}/static/notes.txt`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('HEAD and If-Modified-Since', async () => {
    const head = await httpHead(`${app.url}/static/style.css`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '6');
    assert.equal(head.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(head.body.length, 0);
    const lastModified = head.headers['last-modified'];
    assert.ok(lastModified);
    const cached = await fetch(`${app.url}/static/style.css`, { headers: { 'if-modified-since': lastModified } });
    assert.equal(cached.status, 304);
  });

  test('a large file is streamed whole', async () => {
    const res = await fetch(`${app.url}/big.bin`);
    assert.equal(res.headers.get('content-length'), String(3 * 1024 * 1024));
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body.length, 3 * 1024 * 1024);
    assert.ok(body.every((byte) => byte === 7));
  });

  test('path traversal is refused, never serving a file outside the directory', async () => {
    const attempts = [
      '/static/../package.json',
      '/static/%2e%2e/package.json',
      '/static/%2E%2E/package.json',
      '/static/..%2fpackage.json',
      '/static/..%2Fpackage.json',
      '/static/%2e%2e%2fpackage.json',
      '/static/..\\package.json',
      '/static/..%5cpackage.json',
      '/static/%5c..%5cpackage.json',
      '/static/sub/../../package.json',
      '/static/sub/%2e%2e/%2e%2e/package.json',
      '/static/..%00/package.json',
      '/static/notes.txt%00.png',
      '/static/%c0%ae%c0%ae/package.json',
      '/static/%ZZ',
      '/static//' + join(root, 'package.json'),
    ];
    for (const target of attempts) {
      const res = await rawGet(app.address.port, target);
      assert.ok([400, 403, 404].includes(res.status), `${target} gave ${res.status}`);
      assert.ok(!res.body.includes('TOP SECRET'), `${target} leaked the file`);
    }
    assert.equal((await rawGet(app.address.port, '/static/../package.json')).status, 403);
    assert.equal((await rawGet(app.address.port, '/static/%2e%2e/package.json')).status, 403);
  });
});

describe('TLS', () => {
  test('withCert serves https with the same routes', async () => {
    const app = await started(new App('tls state').withCert(certPath, keyPath).withRoute('/', (_r, state) => state));
    try {
      assert.match(app.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await httpsGet(`https://localhost:${app.address.port}/`);
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'tls state');
    } finally {
      await app.close();
    }
  });

  test('run(address, { tls }) accepts PEM strings and buffers', async () => {
    const app = new App().withRoute('/', () => 'pem');
    await app.run('127.0.0.1:0', { tls: { cert: cert.toString('utf8'), key: Buffer.from(key) } });
    try {
      const res = await httpsGet(`${app.url}/`, '127.0.0.1');
      assert.equal(res.body.toString(), 'pem');
    } finally {
      await app.close();
    }
  });

  test('a missing certificate file rejects run', async () => {
    const app = new App().withCert(join(fixtures, 'nope.pem'), keyPath);
    await assert.rejects(app.run('127.0.0.1:0'), /ENOENT/);
    assert.equal(app.running, false);
  });
});

describe('run and close', () => {
  test('port 0 gives a real port, reflected in address and url', async () => {
    const app = new App().withRoute('/', () => 'ok');
    const address = await app.run('127.0.0.1:0');
    try {
      assert.ok(address.port > 0);
      assert.deepEqual(app.address, { host: '127.0.0.1', port: address.port, family: 'IPv4' });
      assert.equal(app.url, `http://127.0.0.1:${address.port}`);
      assert.equal(app.running, true);
      assert.equal(await (await fetch(app.url)).text(), 'ok');
      await assert.rejects(app.run('127.0.0.1:0'), (error: unknown) => (error as HttpAppError).code === 'HTTP_ERR_ALREADY_RUNNING');
    } finally {
      await app.close();
    }
  });

  test('0.0.0.0 and IPv6 addresses', async () => {
    const any = new App().withRoute('/', () => 'any');
    await any.run('0.0.0.0:0');
    try {
      assert.equal(any.address.host, '0.0.0.0');
      assert.equal(any.url, `http://127.0.0.1:${any.address.port}`);
      assert.equal(await (await fetch(any.url)).text(), 'any');
    } finally {
      await any.close();
    }
    const v6 = new App().withRoute('/', () => 'v6');
    try {
      await v6.run('[::1]:0');
    } catch {
      return; // No IPv6 loopback on this machine.
    }
    try {
      assert.equal(v6.url, `http://[::1]:${v6.address.port}`);
      assert.equal(await (await fetch(v6.url)).text(), 'v6');
    } finally {
      await v6.close();
    }
  });

  test('bad addresses and listen errors reject', async () => {
    await assert.rejects(new App().run('nonsense'), (error: unknown) => (error as HttpAppError).code === 'HTTP_ERR_BAD_ADDRESS');
    const first = await started(new App());
    try {
      const second = new App();
      await assert.rejects(second.run(`127.0.0.1:${first.address.port}`), /EADDRINUSE/);
      assert.equal(second.running, false);
      assert.throws(() => second.server, (error: unknown) => (error as HttpAppError).code === 'HTTP_ERR_NOT_RUNNING');
    } finally {
      await first.close();
    }
  });

  test('close() resolves, runs close hooks, and refuses further connections', async () => {
    const app = await started(new App().withRoute('/', () => 'ok'));
    const port = app.address.port;
    // An idle keep-alive connection must not hold close() up.
    const keepAlive = await new Promise<Socket>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        socket.once('data', () => resolve(socket));
      });
    });
    const keepAliveClosed = new Promise<void>((resolve) => keepAlive.on('close', () => resolve()));
    const order: string[] = [];
    app.onClose(async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      order.push('hook');
    });
    const unregistered = app.onClose(() => {
      order.push('unregistered');
    });
    unregistered();
    app.onClose(() => {
      throw new Error('hook failure is reported, not thrown');
    });
    const errors: unknown[] = [];
    app.withErrorHandler((error) => errors.push(error));

    const startedAt = Date.now();
    const closing = app.close();
    assert.equal(app.close(), closing);
    await closing;
    order.push('closed');
    assert.ok(Date.now() - startedAt < 900, 'close waited for the idle connection');
    assert.deepEqual(order, ['hook', 'closed']);
    assert.equal(errors.length, 1);
    await keepAliveClosed;
    assert.equal(app.running, false);
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
    await app.close(); // Closing again is a no-op.
  });

  test('an app can run again after it has closed', async () => {
    const app = new App().withRoute('/', () => 'again');
    await app.run('127.0.0.1:0');
    await app.close();
    await app.run('127.0.0.1:0');
    try {
      assert.equal(await (await fetch(app.url)).text(), 'again');
    } finally {
      await app.close();
    }
  });

  test('an AbortSignal closes the app', async () => {
    const controller = new AbortController();
    const app = new App().withRoute('/', () => 'ok');
    let hookRan = false;
    app.onClose(() => {
      hookRan = true;
    });
    await app.run('127.0.0.1:0', { signal: controller.signal });
    assert.equal(app.running, true);
    controller.abort();
    await app.close();
    assert.equal(hookRan, true);
    assert.equal(app.running, false);
    await assert.rejects(
      new App().run('127.0.0.1:0', { signal: AbortSignal.abort() }),
      (error: unknown) => (error as HttpAppError).code === 'HTTP_ERR_ABORTED',
    );
  });

  test('close() destroys sockets still open after the grace period', async () => {
    const app = await started(
      new App().withWebsocketRoute('/hold', (_request, socket) => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
        socket.on('error', () => {});
      }),
    );
    const socket = connect(app.address.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => {
      socket.write('GET /hold HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      socket.once('data', () => resolve());
    });
    const socketClosed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const startedAt = Date.now();
    await app.close({ graceMs: 100 });
    assert.ok(Date.now() - startedAt < 900);
    await socketClosed;
  });
});

describe('WebSocket routes', () => {
  interface Seen {
    url: string | undefined;
    head: string;
    state: string;
    socketIsDuplex: boolean;
  }
  const seen: Seen[] = [];
  let app: App<string>;

  /** A stand-in for a real WebSocket handler: answers 101 and echoes raw bytes. */
  function fakeWebSocket(request: IncomingMessage, socket: Duplex, head: Buffer, state: string): void {
    seen.push({ url: request.url, head: head.toString(), state, socketIsDuplex: typeof socket.pipe === 'function' });
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  }

  before(async () => {
    app = await started(
      new App('ws state')
        .withErrorHandler(() => {})
        .withRoute('/both', () => 'http side')
        .withWebsocketRoute('/both', fakeWebSocket)
        .withWebsocketRoute('/ws/*', fakeWebSocket)
        .withWebsocketRoute('/throws', () => {
          throw new Error('handler failed');
        }),
    );
  });
  after(() => app.close());

  function upgrade(path: string, extra = ''): string {
    return (
      `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' +
      extra
    );
  }

  test('a matching upgrade is handed (request, socket, head, state)', async () => {
    seen.length = 0;
    const socket = connect(app.address.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    const waitFor = async (text: string): Promise<void> => {
      const deadline = Date.now() + 2000;
      while (!received.includes(text)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${text}; got ${received}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    socket.write(upgrade('/ws/room?token=1', 'early-bytes'));
    await waitFor('early-bytes');
    assert.match(received, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    socket.write('echo me');
    await waitFor('echo me');
    socket.destroy();
    assert.deepEqual(seen, [{ url: '/ws/room?token=1', head: 'early-bytes', state: 'ws state', socketIsDuplex: true }]);
  });

  test('an upgrade matching no WebSocket route gets a raw 404', async () => {
    const res = await rawExchange(app.address.port, upgrade('/nowhere'));
    assert.equal(res.status, 404);
    assert.equal(res.headers['connection'], 'close');
    assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.body)));
    assert.equal(res.body, '404 Not Found');
  });

  test('a WebSocket handler that throws gives 500 on the raw socket', async () => {
    const res = await rawExchange(app.address.port, upgrade('/throws'));
    assert.equal(res.status, 500);
    assert.equal((await fetch(`${app.url}/both`)).status, 200);
  });

  test('a plain request to a WebSocket-only path gets 426; an HTTP route wins', async () => {
    const res = await fetch(`${app.url}/ws/room`);
    assert.equal(res.status, 426);
    assert.equal(res.headers.get('upgrade'), 'websocket');
    await res.text();
    assert.equal(await (await fetch(`${app.url}/both`)).text(), 'http side');
    assert.equal((await fetch(`${app.url}/elsewhere`)).status, 404);
  });

  test('the same WebSocket routes work over TLS', async () => {
    const tlsApp = new App('tls').withWebsocketRoute('/ws', fakeWebSocket);
    await tlsApp.run('127.0.0.1:0', { tls: { cert, key } });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(`${tlsApp.url}/ws`, {
          ca: cert,
          servername: 'localhost',
          agent: false,
          headers: { Connection: 'Upgrade', Upgrade: 'websocket' },
        });
        req.on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 101);
    } finally {
      await tlsApp.close();
    }
  });
});
