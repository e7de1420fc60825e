// The client (`connect`) against crafted raw TCP servers and real servers: what it sends, which
// handshake answers it refuses, timeouts, masking, and the close handshake from its side.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { connect } from '../../src/stream/client.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import {
  headerOf,
  startFakeServer,
  startServer,
  waitFor,
  withTimeout,
  type FakeServer,
  type TestServer,
} from '../helpers/server.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

async function fake(
  answer: (head: string, socket: Socket) => string | Buffer | null,
  onData?: (bytes: Buffer, socket: Socket) => void,
): Promise<FakeServer> {
  const server = await startFakeServer(answer, onData);
  cleanups.push(() => server.close());
  return server;
}

function acceptFor(head: string): string {
  return createHash('sha1')
    .update(headerOf(head, 'sec-websocket-key') + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64');
}

/** A 101 answer for `head`, with the lines in `extra` added (or replacing the defaults). */
function switching(head: string, extra: string[] = [], omit: string[] = []): string {
  const lines = ['Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptFor(head)}`].filter(
    (line) => !omit.some((name) => line.toLowerCase().startsWith(name.toLowerCase())),
  );
  return ['HTTP/1.1 101 Switching Protocols', ...lines, ...extra].join('\r\n') + '\r\n\r\n';
}

function handshakeError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof WebSocketError, `not a WebSocketError: ${String(error)}`);
    assert.equal(error.code, 'WS_ERR_HANDSHAKE');
    assert.match(error.message, pattern);
    return true;
  };
}

describe('connect: the request', () => {
  test('sends a valid RFC 6455 upgrade request with the path, query, headers and offered protocols', async () => {
    const server = await fake((head) => switching(head, headerOf(head, 'sec-websocket-protocol') ? ['Sec-WebSocket-Protocol: two'] : []));
    const stream = await connect(`${server.url}/some/path?x=1&y=%20`, {
      protocols: ['one', 'two'],
      headers: { Authorization: 'Bearer t0ken', 'X-Custom': 'yes' },
    });
    const head = server.requests[0]!;
    assert.equal(head.split('\r\n')[0], 'GET /some/path?x=1&y=%20 HTTP/1.1');
    assert.equal(headerOf(head, 'host'), `127.0.0.1:${server.port}`);
    assert.equal(headerOf(head, 'upgrade')?.toLowerCase(), 'websocket');
    assert.match(headerOf(head, 'connection') ?? '', /upgrade/i);
    assert.equal(headerOf(head, 'sec-websocket-version'), '13');
    const key = headerOf(head, 'sec-websocket-key')!;
    assert.equal(Buffer.from(key, 'base64').length, 16);
    assert.equal(Buffer.from(key, 'base64').toString('base64'), key);
    assert.equal(headerOf(head, 'sec-websocket-protocol'), 'one, two');
    assert.equal(headerOf(head, 'authorization'), 'Bearer t0ken');
    assert.equal(headerOf(head, 'x-custom'), 'yes');
    assert.equal(stream.protocol, 'two');
    stream.terminate();

    // A fresh key every time.
    const again = await connect(`${server.url}/`);
    assert.notEqual(headerOf(server.requests[1]!, 'sec-websocket-key'), key);
    assert.equal(headerOf(server.requests[1]!, 'sec-websocket-protocol'), undefined);
    again.terminate();
  });

  test('refuses bad URLs and bad protocol names before connecting', async () => {
    const invalid = (error: unknown): boolean => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT';
    await assert.rejects(connect('ftp://127.0.0.1:1/'), invalid);
    await assert.rejects(connect('ws://127.0.0.1:1/#frag'), invalid);
    await assert.rejects(connect('ws://127.0.0.1:1/', { protocols: ['has space'] }), invalid);
    await assert.rejects(connect('ws://127.0.0.1:1/', { protocols: ['dup', 'dup'] }), invalid);
    // Never a synchronous throw: an invalid URL is a rejected promise too.
    const notUrl = connect('not a url');
    assert.ok(notUrl instanceof Promise);
    await assert.rejects(notUrl, invalid);
  });

  test('a refused TCP connection rejects with WS_ERR_HANDSHAKE', async () => {
    // A port that was just free.
    const probe = createNetServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(withTimeout(connect(`ws://127.0.0.1:${port}/`), 5000, 'refused'), handshakeError(/connection failed/));
  });
});

describe('connect: refusing bad answers', () => {
  test('401 and 404 answers reject with WS_ERR_HANDSHAKE naming the status', async () => {
    const server = await fake(() => 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
    await assert.rejects(withTimeout(connect(`${server.url}/`), 5000, '401'), handshakeError(/\b401\b/));

    // A real HTTP server that does not do WebSocket at all.
    const http: Server = createServer((_req, res) => res.writeHead(404, { 'Content-Type': 'text/plain' }).end('no such route'));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    cleanups.push(async () => {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    });
    await assert.rejects(
      withTimeout(connect(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/missing`), 5000, '404'),
      handshakeError(/\b404\b/),
    );

    // And our own route answering 404 for non-upgrade requests is never mistaken for a 101.
    const ours: TestServer = await startServer(() => undefined, { onUpgrade: () => ({ reject: { status: 404, body: 'gone' } }) });
    cleanups.push(() => ours.close());
    await assert.rejects(withTimeout(connect(`${ours.url}/x`), 5000, '404 from onUpgrade'), handshakeError(/\b404\b/));
  });

  test('a refusal carries the status, the headers and the body (bounded), also from onUpgrade', async () => {
    const server = await fake(() => 'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="chat"\r\nContent-Length: 13\r\nConnection: close\r\n\r\nlog in first\n');
    const error = await connect(`${server.url}/`).then(() => assert.fail('connected'), (e: unknown) => e as WebSocketError);
    assert.equal(error.code, 'WS_ERR_HANDSHAKE');
    assert.equal(error.status, 401);
    assert.equal(error.headers?.['www-authenticate'], 'Bearer realm="chat"');
    assert.equal(error.body, 'log in first\n');
    assert.match(error.message, /401: log in first/);

    const ours: TestServer = await startServer(() => undefined, { onUpgrade: () => ({ reject: { status: 429, body: 'slow down', headers: { 'Retry-After': '7' } } }) });
    cleanups.push(() => ours.close());
    const limited = await connect(`${ours.url}/`).then(() => assert.fail('connected'), (e: unknown) => e as WebSocketError);
    assert.deepEqual([limited.status, limited.headers?.['retry-after'], limited.body], [429, '7', 'slow down']);

    // A body that goes on forever: the first 64 KiB are kept and the promise settles.
    const endless = await fake((_head, socket) => {
      socket.write('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = Buffer.alloc(16 * 1024, 'x');
      const timer = setInterval(() => socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`), 1);
      socket.on('close', () => clearInterval(timer)).on('error', () => clearInterval(timer));
      return null;
    });
    const big = await withTimeout(connect(`${endless.url}/`).then(() => assert.fail('connected'), (e: unknown) => e as WebSocketError), 5000, 'endless body');
    assert.equal(big.status, 403);
    assert.equal(big.body?.length, 64 * 1024);
  });

  test('http:// and https:// URLs are taken as ws:// and wss://; one protocol may be a string', async () => {
    const server: TestServer = await startServer(async (stream) => {
      await stream.send(`protocol ${stream.protocol}`);
    }, { protocols: ['chat'] });
    cleanups.push(() => server.close());
    const stream = await connect(`${server.url.replace('ws:', 'http:')}/`, { protocols: 'chat' });
    assert.equal(stream.protocol, 'chat');
    assert.equal((await stream.recv()).text(), 'protocol chat');
    await stream.close();
    await assert.rejects(connect('ftp://127.0.0.1/'), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
  });

  test('a wrong Sec-WebSocket-Accept is rejected', async () => {
    const server = await fake((head) =>
      switching(head, ['Sec-WebSocket-Accept: ' + Buffer.alloc(20).toString('base64')], ['sec-websocket-accept']),
    );
    await assert.rejects(withTimeout(connect(`${server.url}/`), 5000, 'wrong accept'), handshakeError(/Sec-WebSocket-Accept/));
    const missing = await fake((head) => switching(head, [], ['sec-websocket-accept']));
    await assert.rejects(withTimeout(connect(`${missing.url}/`), 5000, 'missing accept'), handshakeError(/Sec-WebSocket-Accept/));
  });

  test('a 101 without Upgrade: websocket or Connection: Upgrade is rejected', async () => {
    const noUpgrade = await fake((head) => switching(head, ['Upgrade: h2c'], ['upgrade']));
    await assert.rejects(withTimeout(connect(`${noUpgrade.url}/`), 5000, 'no upgrade'), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE');
    const noConnection = await fake((head) => switching(head, ['Connection: keep-alive'], ['connection']));
    await assert.rejects(withTimeout(connect(`${noConnection.url}/`), 5000, 'no connection'), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE');
  });

  test('a server that picks a subprotocol the client did not offer is rejected', async () => {
    const server = await fake((head) => switching(head, ['Sec-WebSocket-Protocol: evil']));
    await assert.rejects(withTimeout(connect(`${server.url}/`, { protocols: ['good', 'better'] }), 5000, 'unoffered'), handshakeError(/evil/));
    // Also when the client offered none at all.
    await assert.rejects(withTimeout(connect(`${server.url}/`), 5000, 'none offered'), handshakeError(/evil/));
    assert.equal(server.requests.length, 2);
  });

  test('a server that answers with an extension the client did not offer is rejected', async () => {
    const server = await fake((head) => switching(head, ['Sec-WebSocket-Extensions: permessage-deflate']));
    await assert.rejects(withTimeout(connect(`${server.url}/`, { perMessageDeflate: false }), 5000, 'extension'), handshakeError(/extension/));
    // permessage-deflate is offered by default, but no other extension.
    const other = await fake((head) => switching(head, ['Sec-WebSocket-Extensions: x-webkit-deflate-frame']));
    await assert.rejects(withTimeout(connect(`${other.url}/`), 5000, 'extension'), handshakeError(/extension/));
  });

  test('a server that never answers makes connect reject after handshakeTimeoutMs, and the socket is closed', async () => {
    let serverSocket: Socket | undefined;
    const server = await fake((_head, socket) => {
      serverSocket = socket;
      return null;
    });
    const started = Date.now();
    await assert.rejects(connect(`${server.url}/`, { handshakeTimeoutMs: 200 }), handshakeError(/timed out/));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 190 && elapsed < 2000, `took ${elapsed} ms`);
    await waitFor(() => serverSocket !== undefined && serverSocket.destroyed, 2000, 'the fake server to see the socket close');
  });

  test('an AbortSignal aborts the attempt', async () => {
    const server = await fake(() => null);
    const controller = new AbortController();
    const attempt = connect(`${server.url}/`, { signal: controller.signal, handshakeTimeoutMs: 5000 });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(withTimeout(attempt, 2000, 'abort'), (error: unknown) => error instanceof Error);
  });
});

describe('connect: reading the answer itself', () => {
  test('a malformed or endless response head rejects with WS_ERR_HANDSHAKE at once, not at the timeout', async () => {
    for (const answer of ['HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\r\n\r\n', 'SSH-2.0-OpenSSH_9.2\r\n\r\n', 'HTTP/1.1 101 x\r\nUpgrade: websocket\r\n  folded\r\n\r\n']) {
      const server = await fake(() => answer);
      await assert.rejects(withTimeout(connect(`${server.url}/`, { handshakeTimeoutMs: 10_000 }), 3000, 'malformed head'), handshakeError(/malformed response/));
    }
    const endless = await fake((_head, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\n');
      const timer = setInterval(() => socket.write('X-Pad: ' + 'p'.repeat(1000) + '\r\n'), 1);
      socket.on('close', () => clearInterval(timer)).on('error', () => clearInterval(timer));
      return null;
    });
    await assert.rejects(withTimeout(connect(`${endless.url}/`, { handshakeTimeoutMs: 10_000 }), 5000, 'endless head'), handshakeError(/over 16384 bytes/));
  });

  test('a chunked refusal body from node:http is decoded; a server that closes without answering is an error', async () => {
    const http = createServer((_request, response) => response.end());
    http.on('upgrade', (_request, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n4\r\nnot \r\n7\r\nallowed\r\n0\r\n\r\n');
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    cleanups.push(() => new Promise((resolve) => http.close(() => resolve())));
    const error = await connect(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`).then(() => assert.fail('connected'), (e: unknown) => e as WebSocketError);
    assert.deepEqual([error.status, error.body, error.headers?.['set-cookie']], [403, 'not allowed', ['a=1', 'b=2']]);

    const hangsUp = await fake((_head, socket) => {
      socket.end();
      return null;
    });
    await assert.rejects(withTimeout(connect(`${hangsUp.url}/`), 3000, 'hang-up'), handshakeError(/closed the connection before it answered/));
  });

  test('header names and values are checked before connecting; a Host given by the caller is sent instead of ours', async () => {
    for (const headers of [{ 'X-A': 'one\r\nX-Injected: 1' }, { 'Bad Name': 'x' }, { 'X-A': 'nul\0' }] as Record<string, string>[]) {
      await assert.rejects(connect('ws://127.0.0.1:9/', { headers }), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
    }
    const server = await fake((head) => switching(head));
    const stream = await connect(`${server.url}/x`, { headers: { Host: 'chat.example:8443' } });
    const head = server.requests.at(-1)!;
    assert.equal(headerOf(head, 'host'), 'chat.example:8443');
    assert.equal(head.split('\r\n').filter((line) => /^host:/i.test(line)).length, 1);
    stream.terminate();
  });
});

describe('connect: after the handshake', () => {
  test('a frame sent in the same packet as the 101 is delivered', async () => {
    const server = await fake((head) => Buffer.concat([Buffer.from(switching(head)), Buffer.from([0x81, 0x05]), Buffer.from('Hello')]));
    const stream = await connect(`${server.url}/`);
    const message = await withTimeout(stream.recv(), 5000, 'first frame');
    assert.equal(message.text(), 'Hello');
    stream.terminate();
  });

  test('client frames are masked with a fresh key each; the payload unmasks to what was sent', async () => {
    const frames: Buffer[] = [];
    let got = Buffer.alloc(0);
    const server = await fake(
      (head) => switching(head),
      (bytes) => (got = Buffer.concat([got, bytes])),
    );
    const stream = await connect(`${server.url}/`);
    await stream.send('abcd');
    await stream.send('abcd');
    await stream.send(Buffer.alloc(200, 7));
    await waitFor(() => got.length >= 2 * (2 + 4 + 4) + (4 + 4 + 200), 5000, 'three frames');
    let offset = 0;
    const payloads: Buffer[] = [];
    const keys: string[] = [];
    while (offset < got.length) {
      const b0 = got[offset]!;
      const b1 = got[offset + 1]!;
      assert.equal(b1 & 0x80, 0x80, 'mask bit set');
      let length = b1 & 0x7f;
      let at = offset + 2;
      if (length === 126) {
        length = got.readUInt16BE(at);
        at += 2;
      }
      const key = got.subarray(at, at + 4);
      keys.push(key.toString('hex'));
      const payload = Buffer.from(got.subarray(at + 4, at + 4 + length).map((b, i) => b ^ key[i % 4]!));
      payloads.push(payload);
      frames.push(Buffer.from([b0]));
      offset = at + 4 + length;
    }
    assert.deepEqual(frames.map((f) => f[0]), [0x81, 0x81, 0x82]);
    assert.deepEqual(payloads, [Buffer.from('abcd'), Buffer.from('abcd'), Buffer.alloc(200, 7)]);
    assert.equal(new Set(keys).size, 3, 'mask keys repeat');
    stream.terminate();
  });

  test('a masked frame from the server fails the connection with 1002', async () => {
    let received = Buffer.alloc(0);
    const server = await fake(
      // A masked "Hello" (a server must not mask).
      (head) => Buffer.concat([Buffer.from(switching(head)), Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58])]),
      (bytes) => (received = Buffer.concat([received, bytes])),
    );
    const stream = await connect(`${server.url}/`);
    const info = await withTimeout(stream.closed, 5000, 'closed');
    assert.equal(info.code, 1002);
    assert.equal(info.wasClean, false);
    assert.equal(info.error?.code, 'WS_ERR_UNEXPECTED_MASK');
    // The client told the server why: a masked close frame with code 1002.
    await waitFor(() => received.length >= 8, 2000, 'close frame at the server');
    assert.equal(received[0], 0x88);
    const key = received.subarray(2, 6);
    assert.equal(((received[6]! ^ key[0]!) << 8) | (received[7]! ^ key[1]!), 1002);
  });

  test('after the close handshake the client waits for the server to drop TCP, but only closeTimeoutMs', async () => {
    let serverSocket: Socket | undefined;
    const server = await fake(
      (head, socket) => {
        serverSocket = socket;
        return switching(head);
      },
      (bytes, socket) => {
        // Answer a close frame with a close frame, and keep the TCP connection open.
        if (bytes[0] === 0x88) socket.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
      },
    );
    const stream = await connect(`${server.url}/`, { closeTimeoutMs: 300 });
    const started = Date.now();
    const info = await withTimeout(stream.close(1000), 5000, 'close');
    assert.deepEqual(info, { code: 1000, reason: '', wasClean: true });
    await waitFor(() => stream.inner.destroyed, 3000, 'client to drop the socket');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250, `dropped after ${elapsed} ms, before the close timeout`);
    await waitFor(() => serverSocket!.destroyed || serverSocket!.readableEnded, 2000, 'server to see the end');
  });

  test('a server that never answers the close frame: close() resolves with 1006 after closeTimeoutMs', async () => {
    const server = await fake((head) => switching(head));
    const stream = await connect(`${server.url}/`, { closeTimeoutMs: 200 });
    const started = Date.now();
    const info = await withTimeout(stream.close(1000, 'bye'), 5000, 'close');
    assert.equal(info.code, 1006);
    assert.equal(info.wasClean, false);
    assert.ok(info.error instanceof WebSocketError);
    assert.equal(info.error.code, 'WS_ERR_CLOSE_TIMEOUT');
    assert.match(info.error.message, /close handshake not completed within 200 ms/);
    assert.ok(Date.now() - started >= 180);
    assert.ok(stream.inner.destroyed);
  });

  test('connect returns a working stream against our own server', async () => {
    const server: TestServer = await startServer(async (stream) => {
      for await (const message of stream) await stream.send(message);
    });
    cleanups.push(() => server.close());
    const stream = await connect(new URL(`${server.url}/echo`));
    await stream.send('round trip');
    assert.equal((await withTimeout(stream.recv(), 5000, 'echo')).text(), 'round trip');
    assert.equal(stream.peerAddr, `127.0.0.1:${server.port}`);
    await stream.close();
  });
});
