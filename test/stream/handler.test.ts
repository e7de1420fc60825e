// websocketHandler on a plain node:http server: the handler's lifetime decides the close code,
// upgrade hooks (onUpgrade, allowedOrigins), subprotocol choice, shutdown, and the handshake
// checks as seen by raw TCP requests and by the ws package's client.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { connect } from '../../src/stream/client.js';
import { handleUpgrade, websocketHandler, type WebSocketHandler, type WebSocketHandlerOptions } from '../../src/stream/handler.js';
import { rejectUpgrade, type UpgradeDecision } from '../../src/node/upgrade.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import type { WebSocketStream } from '../../src/stream/stream.js';
import {
  rawExchange,
  rawUpgrade,
  startServer,
  upgradeRequest,
  waitFor,
  withTimeout,
  wsUnexpectedResponse,
  WsClient,
  type TestServer,
} from '../helpers/server.js';

const servers: TestServer<any>[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function serve<State = unknown>(
  handler: WebSocketHandler<State>,
  options: WebSocketHandlerOptions = {},
  state?: State,
): Promise<TestServer<State>> {
  const server = await startServer(handler, options, { state });
  servers.push(server);
  return server;
}

const SAMPLE_ACCEPT = createHash('sha1').update('dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

describe('websocketHandler: the handler owns the connection', () => {
  test('when the handler returns, the client receives close 1000', async () => {
    const server = await serve(async (stream) => {
      const message = await stream.recv();
      await stream.send(`got ${message.text()}`);
    });
    const client = await connect(`${server.url}/`);
    await client.send('hi');
    assert.equal((await withTimeout(client.recv(), 5000, 'reply')).text(), 'got hi');
    assert.deepEqual(await withTimeout(client.closed, 5000, 'closed'), { code: 1000, reason: '', wasClean: true });

    // Same with the ws package's client, and with a handler that returns synchronously.
    const server2 = await serve(() => undefined);
    const ws = await WsClient.open(`${server2.url}/`);
    assert.deepEqual(await withTimeout(ws.closed, 5000, 'ws closed'), { code: 1000, reason: '' });
  });

  test('when the handler throws, the client receives 1011 and onError gets the error and the stream', async () => {
    const reported: [unknown, WebSocketStream][] = [];
    const boom = new Error('handler exploded');
    const server = await serve(
      async (stream) => {
        await stream.recv();
        throw boom;
      },
      { onError: (error, stream) => reported.push([error, stream]) },
    );
    const client = await connect(`${server.url}/`);
    await client.send('trigger');
    const info = await withTimeout(client.closed, 5000, 'closed');
    assert.equal(info.code, 1011);
    assert.equal(info.wasClean, true);
    assert.equal(reported.length, 1);
    assert.equal(reported[0]![0], boom);
    assert.equal(reported[0]![1].peerAddr, `127.0.0.1:${client.inner.localPort}`);

    // A synchronous throw is handled the same way.
    const server2 = await serve(
      () => {
        throw new TypeError('sync');
      },
      { onError: (error, stream) => reported.push([error, stream]) },
    );
    const ws = await WsClient.open(`${server2.url}/`);
    assert.equal((await withTimeout(ws.closed, 5000, 'ws closed')).code, 1011);
    assert.equal(reported.length, 2);
    assert.ok(reported[1]![0] instanceof TypeError);
  });

  test('a handler ending because the peer closed under recv() is not reported as an error', async () => {
    const reported: unknown[] = [];
    let handlerEnded = false;
    const server = await serve(
      async (stream) => {
        try {
          for (;;) await stream.recv();
        } finally {
          handlerEnded = true;
        }
      },
      { onError: (error) => reported.push(error) },
    );
    const client = await connect(`${server.url}/`);
    await client.send('one');
    await withTimeout(client.close(1001, 'leaving'), 5000, 'close');
    await waitFor(() => handlerEnded, 5000, 'handler to end');
    const ws = await WsClient.open(`${server.url}/`);
    ws.ws.terminate();
    await waitFor(() => server.route.connectionCount === 0, 5000, 'connections to go');
    assert.deepEqual(reported, []);
  });

  test('the route passes the app state to the handler; handleUpgrade forwards to a route', async () => {
    const state = { greeting: 'hello from state' };
    const server = await serve<{ greeting: string }>(async (stream, s) => {
      await stream.send(s.greeting);
    }, {}, state);
    const client = await connect(`${server.url}/`);
    assert.equal((await withTimeout(client.recv(), 5000, 'state')).text(), 'hello from state');

    // handleUpgrade(req, socket, head, route, state) on a server of our own.
    const route = websocketHandler<number>(async (stream, n) => {
      await stream.send(String(n * 2));
    });
    const http = createServer();
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(req, socket, head, route, 21));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    try {
      const c2 = await connect(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`);
      assert.equal((await withTimeout(c2.recv(), 5000, 'handleUpgrade')).text(), '42');
      await c2.closed;
    } finally {
      await route.shutdown();
      http.closeAllConnections();
      http.close();
    }
  });

  test('connectionCount counts open connections; shutdown() closes each with 1001 and resolves', async () => {
    const server = await serve(async (stream) => {
      for await (const message of stream) await stream.send(message);
    });
    const a = await connect(`${server.url}/`);
    const b = await WsClient.open(`${server.url}/`);
    await waitFor(() => server.route.connectionCount === 2, 5000, 'two connections');
    const done = server.route.shutdown(1001, 'server going down');
    const [infoA, infoB] = await withTimeout(Promise.all([a.closed, b.closed]), 5000, 'clients closed');
    assert.deepEqual(infoA, { code: 1001, reason: 'server going down', wasClean: true });
    assert.deepEqual(infoB, { code: 1001, reason: 'server going down' });
    await withTimeout(done, 5000, 'shutdown');
    assert.equal(server.route.connectionCount, 0);
  });

  test('after shutdown() no connection stays open: upgrades in flight are closed with its code, new ones get 503', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let hookCalls = 0;
    let handlerRuns = 0;
    const server = await serve(
      async (stream) => {
        handlerRuns++;
        await stream.closed;
      },
      {
        onUpgrade: async () => {
          hookCalls++;
          await gate;
          return undefined;
        },
      },
    );
    const inFlight = connect(`${server.url}/`);
    await waitFor(() => hookCalls === 1, 5000, 'onUpgrade to be called');
    await withTimeout(server.route.shutdown(1001, 'bye'), 5000, 'shutdown');
    release();
    const stream = await withTimeout(inFlight, 5000, 'in-flight upgrade');
    assert.deepEqual(await withTimeout(stream.closed, 5000, 'in-flight stream closed'), { code: 1001, reason: 'bye', wasClean: true });
    assert.equal(handlerRuns, 0, 'the handler ran for a connection accepted after shutdown');

    const later = await rawExchange(server.port, upgradeRequest('/'));
    assert.equal(later.status, 503);
    assert.equal(hookCalls, 1);
    assert.equal(server.route.connectionCount, 0);
  });

  test('bytes sent right behind the upgrade request (the head) are not lost', async () => {
    const server = await serve(async (stream) => {
      for await (const message of stream) await stream.send(message);
    });
    // A masked text frame "Hello" (RFC 6455 section 5.7) in the same write as the request.
    const frame = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    const socket = netConnect(server.port, '127.0.0.1');
    socket.write(Buffer.concat([Buffer.from(upgradeRequest('/')), frame]));
    let data = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
    await waitFor(() => data.includes(Buffer.from([0x81, 0x05])), 5000, 'echo');
    const text = data.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(text.includes(`Sec-WebSocket-Accept: ${SAMPLE_ACCEPT}\r\n`));
    const body = data.subarray(data.indexOf('\r\n\r\n') + 4);
    assert.deepEqual(body, Buffer.from([0x81, 0x05, ...Buffer.from('Hello')]));
    socket.destroy();
  });
});

describe('websocketHandler: upgrade hooks', () => {
  test('the hooks see the request query parsed, and the request object is the server\'s own', async () => {
    const seen: { onUpgrade?: string | null; origin?: string | null; protocol?: string | null; same?: boolean } = {};
    let original: IncomingMessage | undefined;
    const server = await serve(async (stream) => void (await stream.send(String(stream.data))), {
      allowedOrigins: (_origin, request) => {
        seen.origin = request.query.get('room');
        return true;
      },
      selectProtocol: (offered, request) => {
        seen.protocol = request.query.get('name');
        return offered[0];
      },
      onUpgrade: (request) => {
        seen.onUpgrade = request.query.get('room');
        seen.same = (request as unknown) === original;
        return { data: request.query.getAll('tag').join('+') };
      },
    });
    server.server.prependListener('upgrade', (request: IncomingMessage) => (original = request));
    const stream = await connect(`${server.url}/ws?room=blue%20sky&name=ada&tag=a&tag=b`, { protocols: ['chat'] });
    assert.equal((await stream.recv()).text(), 'a+b');
    assert.deepEqual(seen, { origin: 'blue sky', protocol: 'ada', onUpgrade: 'blue sky', same: true });
    await stream.close();
    const bare = await connect(`${server.url}/ws`);
    assert.equal((await bare.recv()).text(), '');
    await bare.close();
  });

  test('onUpgrade can refuse with 401, a body and headers (raw request and ws unexpected-response)', async () => {
    let handlerRan = false;
    const seenAuth: (string | undefined)[] = [];
    const server = await serve(
      () => {
        handlerRan = true;
      },
      {
        onUpgrade: (request) => {
          seenAuth.push(request.headers.authorization);
          if (request.headers.authorization !== 'Bearer good') {
            return { reject: { status: 401, body: 'token required', headers: { 'WWW-Authenticate': 'Bearer' } } };
          }
          return { data: { user: 'alice' } };
        },
      },
    );
    const raw = await rawExchange(server.port, upgradeRequest('/private'));
    assert.equal(raw.status, 401);
    assert.match(raw.raw, /^HTTP\/1\.1 401 Unauthorized\r\n/);
    assert.equal(raw.headers['www-authenticate'], 'Bearer');
    assert.equal(raw.headers['content-length'], String(Buffer.byteLength('token required')));
    assert.equal(raw.body, 'token required');
    assert.equal(raw.headers['sec-websocket-accept'], undefined);

    const viaWs = await wsUnexpectedResponse(`${server.url}/private`, { headers: { Authorization: 'Bearer bad' } });
    assert.equal(viaWs.status, 401);
    assert.equal(viaWs.body, 'token required');
    assert.equal(viaWs.headers['www-authenticate'], 'Bearer');

    // Our client reports the status.
    await assert.rejects(connect(`${server.url}/private`), (error: unknown) => {
      return error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE' && /401/.test(error.message);
    });
    assert.equal(handlerRan, false);
    assert.equal(server.route.connectionCount, 0);

    // With the right token it is accepted.
    const ok = await connect(`${server.url}/private`, { headers: { Authorization: 'Bearer good' } });
    await withTimeout(ok.closed, 5000, 'accepted connection');
    assert.equal(handlerRan, true);
    assert.deepEqual(seenAuth, [undefined, 'Bearer bad', undefined, 'Bearer good']);
  });

  test('rejectUpgrade() builds the same refusal; an async onUpgrade works; a throwing onUpgrade gives 500', async () => {
    const server = await serve(() => undefined, {
      onUpgrade: async (request) => {
        await new Promise((resolve) => setTimeout(resolve, 10));
        if (request.url === '/teapot') return rejectUpgrade(418, 'short and stout', { 'X-Why': 'tea' });
        if (request.url === '/throw') throw new Error('hook failed');
        return undefined;
      },
    });
    const teapot = await rawExchange(server.port, upgradeRequest('/teapot'));
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body, 'short and stout');
    assert.equal(teapot.headers['x-why'], 'tea');

    const originalError = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      const thrown = await rawExchange(server.port, upgradeRequest('/throw'));
      assert.equal(thrown.status, 500);
    } finally {
      console.error = originalError;
    }
    assert.equal(logged.length, 1);

    const accepted = await rawUpgrade(server.port, upgradeRequest('/fine'));
    assert.equal(accepted.status, 101);
  });

  test('hooks that throw or answer unusably give 500 (logged), never a crash or a forged header', async () => {
    const server = await serve(() => undefined, {
      allowedOrigins: (origin) => {
        if (origin === 'https://throws.example') throw new Error('origin check failed');
        return true;
      },
      selectProtocol: (offered) => {
        if (offered.includes('boom')) throw new Error('selectProtocol failed');
        return undefined;
      },
      onUpgrade: (request): UpgradeDecision => {
        if (request.url === '/inject-accept') return { headers: { 'X-Ok': 'fine\r\nSet-Cookie: forged=1' } };
        if (request.url === '/inject-reject') return rejectUpgrade(401, 'no', { 'X-Ok': 'a\r\nSet-Cookie: forged=2' });
        if (request.url === '/bad-name') return { headers: { 'Bad Name': 'x' } };
        if (request.url === '/status-101') return rejectUpgrade(101);
        if (request.url === '/status-200') return rejectUpgrade(200, 'looks like success');
        if (request.url === '/redirect') return rejectUpgrade(307, '', { Location: '/elsewhere' });
        return undefined;
      },
    });
    const originalError = console.error;
    const logged: unknown[][] = [];
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      const cases: [string, Record<string, string>][] = [
        ['/', { Origin: 'https://throws.example' }],
        ['/', { 'Sec-WebSocket-Protocol': 'boom' }],
        ['/inject-accept', {}],
        ['/inject-reject', {}],
        ['/bad-name', {}],
        ['/status-101', {}],
        ['/status-200', {}],
      ];
      for (const [path, headers] of cases) {
        const response = await rawExchange(server.port, upgradeRequest(path, headers));
        assert.equal(response.status, 500, `${path} ${JSON.stringify(headers)}`);
        assert.doesNotMatch(response.raw, /forged/i);
      }
      assert.equal(logged.length, cases.length);
    } finally {
      console.error = originalError;
    }
    const redirect = await rawExchange(server.port, upgradeRequest('/redirect'));
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers['location'], '/elsewhere');
    // The route still works.
    assert.equal((await rawUpgrade(server.port, upgradeRequest('/'))).status, 101);
  });

  test('onUpgrade accepting with data makes it stream.data; its headers go into the 101', async () => {
    const server = await serve(
      async (stream) => {
        await stream.send(JSON.stringify(stream.data));
      },
      {
        onUpgrade: (request) => ({
          data: { user: new URL(request.url!, 'http://x').searchParams.get('user'), at: 'upgrade' },
          headers: { 'X-Session': 'abc123' },
        }),
      },
    );
    const client = await connect(`${server.url}/?user=bob`);
    assert.deepEqual(JSON.parse((await withTimeout(client.recv(), 5000, 'data')).text()), { user: 'bob', at: 'upgrade' });

    const ws = new WebSocket(`${server.url}/?user=carol`);
    const message = once(ws, 'message');
    const [response] = (await withTimeout(once(ws, 'upgrade'), 5000, 'ws upgrade')) as [IncomingMessage];
    assert.equal(response.headers['x-session'], 'abc123');
    const [data] = (await withTimeout(message, 5000, 'ws message')) as [Buffer];
    assert.deepEqual(JSON.parse(data.toString()), { user: 'carol', at: 'upgrade' });
    ws.close();
  });

  test('allowedOrigins refuses other origins with 403 and accepts listed ones', async () => {
    const server = await serve(async (stream) => {
      await stream.send(`origin ok: ${stream.request?.headers.origin}`);
    }, { allowedOrigins: ['https://good.example'] });

    const bad = await rawExchange(server.port, upgradeRequest('/', { Origin: 'https://evil.example' }));
    assert.equal(bad.status, 403);
    assert.match(bad.body, /evil\.example/);
    const none = await rawExchange(server.port, upgradeRequest('/'));
    assert.equal(none.status, 403);
    const viaWs = await wsUnexpectedResponse(`${server.url}/`, { origin: 'https://evil.example' });
    assert.equal(viaWs.status, 403);
    await assert.rejects(connect(`${server.url}/`, { headers: { Origin: 'https://evil.example' } }), (error: unknown) => {
      return error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE' && /403/.test(error.message);
    });

    const good = await connect(`${server.url}/`, { headers: { Origin: 'https://good.example' } });
    assert.equal((await withTimeout(good.recv(), 5000, 'good origin')).text(), 'origin ok: https://good.example');

    // A predicate works too.
    const server2 = await serve(() => undefined, { allowedOrigins: (origin) => origin?.endsWith('.trusted.example') === true });
    assert.equal((await rawUpgrade(server2.port, upgradeRequest('/', { Origin: 'https://a.trusted.example' }))).status, 101);
    assert.equal((await rawExchange(server2.port, upgradeRequest('/', { Origin: 'https://a.untrusted.example' }))).status, 403);
  });

  test('the server picks its preferred protocol among the offered ones; both sides see it', async () => {
    const server = await serve(async (stream) => {
      await stream.send(`server agreed ${stream.protocol ?? 'none'}`);
    }, { protocols: ['chat.v2', 'chat.v1'] });
    const both = await connect(`${server.url}/`, { protocols: ['chat.v1', 'chat.v2'] });
    assert.equal(both.protocol, 'chat.v2');
    assert.equal((await withTimeout(both.recv(), 5000, 'protocol')).text(), 'server agreed chat.v2');
    const one = await connect(`${server.url}/`, { protocols: ['other', 'chat.v1'] });
    assert.equal(one.protocol, 'chat.v1');
    const none = await connect(`${server.url}/`);
    assert.equal(none.protocol, undefined);
    assert.equal((await withTimeout(none.recv(), 5000, 'no protocol')).text(), 'server agreed none');

    // The 101 carries exactly the chosen protocol; with no overlap, no header at all.
    const raw = await rawUpgrade(server.port, upgradeRequest('/', { 'Sec-WebSocket-Protocol': 'x, chat.v1, chat.v2' }));
    assert.equal(raw.status, 101);
    assert.equal(raw.headers['sec-websocket-protocol'], 'chat.v2');
    const rawNone = await rawUpgrade(server.port, upgradeRequest('/', { 'Sec-WebSocket-Protocol': 'x, y' }));
    assert.equal(rawNone.status, 101);
    assert.equal(rawNone.headers['sec-websocket-protocol'], undefined);
    const ws = new WebSocket(`${server.url}/`, ['x', 'chat.v1']);
    const opened = once(ws, 'open');
    const [response] = (await withTimeout(once(ws, 'upgrade'), 5000, 'ws upgrade')) as [IncomingMessage];
    assert.equal(response.headers['sec-websocket-protocol'], 'chat.v1');
    await withTimeout(opened, 5000, 'ws open');
    assert.equal(ws.protocol, 'chat.v1');
    ws.close();
    const unrelated = await connect(`${server.url}/`, { protocols: ['mqtt'] });
    assert.equal(unrelated.protocol, undefined);
  });

  test('selectProtocol and onUpgrade can choose the protocol; choosing an unoffered one is refused with 500', async () => {
    const server = await serve(() => undefined, {
      selectProtocol: (offered) => offered[offered.length - 1],
      onUpgrade: (request) => {
        if (request.url === '/force') return { protocol: 'forced' };
        if (request.url === '/bogus') return { protocol: 'never-offered' };
        return undefined;
      },
    });
    const last = await connect(`${server.url}/`, { protocols: ['a', 'b', 'c'] });
    assert.equal(last.protocol, 'c');
    const forced = await connect(`${server.url}/force`, { protocols: ['a', 'forced'] });
    assert.equal(forced.protocol, 'forced');
    const bogus = await rawExchange(server.port, upgradeRequest('/bogus', { 'Sec-WebSocket-Protocol': 'a' }));
    assert.equal(bogus.status, 500);
  });
});

describe('websocketHandler: handshake validation', () => {
  test('bad upgrade requests get a clear HTTP error and never reach the handler', async () => {
    let handlerRan = false;
    const server = await serve(() => {
      handlerRan = true;
    });
    const lines = (extra: string[], drop: string[] = [], method = 'GET'): string =>
      [
        `${method} / HTTP/1.1`,
        'Host: 127.0.0.1',
        ...['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'].filter(
          (line) => !drop.some((name) => line.startsWith(name)),
        ),
        ...extra,
      ].join('\r\n') + '\r\n\r\n';

    const noKey = await rawExchange(server.port, lines([], ['Sec-WebSocket-Key']));
    assert.equal(noKey.status, 400);
    const shortKey = await rawExchange(server.port, lines(['Sec-WebSocket-Key: c2hvcnQ='], ['Sec-WebSocket-Key']));
    assert.equal(shortKey.status, 400);
    const oldVersion = await rawExchange(server.port, lines(['Sec-WebSocket-Version: 8'], ['Sec-WebSocket-Version']));
    assert.equal(oldVersion.status, 426);
    assert.equal(oldVersion.headers['sec-websocket-version'], '13');
    const post = await rawExchange(server.port, lines(['Content-Length: 0'], [], 'POST'));
    assert.equal(post.status, 405);
    assert.equal(handlerRan, false);
    const good = await rawUpgrade(server.port, lines([]));
    assert.equal(good.status, 101);
    assert.equal(good.headers['sec-websocket-accept'], SAMPLE_ACCEPT);
    assert.equal(good.headers['upgrade']?.toLowerCase(), 'websocket');
    await waitFor(() => handlerRan, 5000, 'handler');
  });
});
