// humphrey-ws/ws against the real `ws` package on the other end of real sockets: our server
// with ws clients, our client with a ws server, the ws idioms (clients.forEach broadcast,
// handleUpgrade, verifyClient, createWebSocketStream) and ws's event shapes and error codes.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, get as httpGet, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Ws, { WebSocketServer as WsServer, type RawData } from 'ws';
import WebSocket, { WebSocketServer, createWebSocketStream, Server } from '../../src/compat/ws.js';
import { withTimeout } from '../helpers/server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** Our server on a free port; closed (with its clients terminated) after the tests. */
async function ourServer(options: ConstructorParameters<typeof WebSocketServer>[0] = { port: 0 }): Promise<{ wss: WebSocketServer; url: string }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', ...options });
  await once(wss, 'listening');
  cleanups.push(() => {
    for (const client of wss.clients ?? []) client.terminate();
    return new Promise((resolve) => wss.close(() => resolve(undefined)));
  });
  return { wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` };
}

/** A ws-package server on a free port. */
async function wsServer(options: ConstructorParameters<typeof WsServer>[0] = {}): Promise<{ wss: WsServer; url: string }> {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, ...options });
  await once(wss, 'listening');
  cleanups.push(() => {
    for (const client of wss.clients) client.terminate();
    return new Promise((resolve) => wss.close(() => resolve(undefined)));
  });
  return { wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` };
}

function nextMessage(ws: { once(event: 'message', listener: (data: RawData, isBinary: boolean) => void): unknown }): Promise<[RawData, boolean]> {
  return withTimeout(new Promise((resolve) => ws.once('message', (data, isBinary) => resolve([data, isBinary]))), 5000, 'message');
}

function closed(ws: { once(event: 'close', listener: (code: number, reason: Buffer) => void): unknown }): Promise<[number, Buffer]> {
  return withTimeout(new Promise((resolve) => ws.once('close', (code, reason) => resolve([code, reason]))), 5000, 'close');
}

describe('exports', () => {
  test('the default export is the WebSocket class carrying the others, as ws exports them', () => {
    assert.equal(typeof WebSocket, 'function');
    assert.equal(WebSocket.WebSocket, WebSocket);
    assert.equal(WebSocket.WebSocketServer, WebSocketServer);
    assert.equal(WebSocket.Server, WebSocketServer);
    assert.equal(Server, WebSocketServer);
    assert.equal(WebSocket.createWebSocketStream, createWebSocketStream);
    assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
  });

  test("require('humphrey-ws/ws') returns the class, and import gives the same names", () => {
    const script =
      "const W = require('humphrey-ws/ws');" +
      "if (typeof W !== 'function' || W.WebSocket !== W || typeof W.WebSocketServer !== 'function' || W.Server !== W.WebSocketServer || typeof W.createWebSocketStream !== 'function') process.exit(2);" +
      "import('humphrey-ws/ws').then((m) => process.exit(m.default === W && m.WebSocketServer === W.WebSocketServer ? 0 : 3));";
    const result = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
  });
});

describe('our server, ws clients', () => {
  test("echo: message (data, isBinary) with Buffers, text and binary kept apart", async () => {
    const { wss, url } = await ourServer();
    wss.on('connection', (ws) => ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary })));
    const client = new Ws(url);
    await once(client, 'open');
    client.send('héllo');
    const [text, textIsBinary] = await nextMessage(client);
    assert.equal(text.toString(), 'héllo');
    assert.equal(textIsBinary, false);
    client.send(Buffer.from([1, 2, 3]));
    const [bytes, bytesIsBinary] = await nextMessage(client);
    assert.deepEqual(bytes, Buffer.from([1, 2, 3]));
    assert.equal(bytesIsBinary, true);
    const big = Buffer.alloc(200_000, 7);
    client.send(big);
    const [echoed] = await nextMessage(client);
    assert.ok(big.equals(echoed as Buffer));
    client.close();
    await closed(client);
  });

  test('connection (ws, req), clients as a Set, close (code, reason Buffer) on both sides', async () => {
    const { wss, url } = await ourServer();
    const connected = once(wss, 'connection') as Promise<[WebSocket, IncomingMessage]>;
    const client = new Ws(`${url}/room?x=1`, ['chat']);
    const [ws, req] = await connected;
    assert.equal(req.url, '/room?x=1');
    assert.equal(ws.protocol, 'chat');
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.ok(wss.clients!.has(ws));
    await once(client, 'open');
    const serverClosed = closed(ws);
    client.close(4001, 'bye now');
    const [code, reason] = await serverClosed;
    assert.equal(code, 4001);
    assert.ok(Buffer.isBuffer(reason));
    assert.equal(reason.toString(), 'bye now');
    assert.equal(ws.readyState, WebSocket.CLOSED);
    assert.equal(wss.clients!.size, 0);
    const [clientCode] = await closed(client);
    assert.equal(clientCode, 4001);
  });

  test('wss.clients.forEach((c) => c.send(data)) reaches every client with the same bytes', async () => {
    const { wss, url } = await ourServer();
    const clients = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const client = new Ws(url);
        await once(client, 'open');
        return client;
      }),
    );
    await waitUntil(() => wss.clients!.size === 5);
    const received = clients.map((client) => nextMessage(client));
    const data = Buffer.from('to everyone');
    wss.clients!.forEach((c) => c.send(data));
    for (const [message, isBinary] of await Promise.all(received)) {
      assert.deepEqual(message, data);
      assert.equal(isBinary, true);
    }
    // A string broadcast, then a changed buffer: each is framed from what it is now.
    const second = clients.map((client) => nextMessage(client));
    wss.clients!.forEach((c) => c.send('text for all'));
    for (const [message, isBinary] of await Promise.all(second)) {
      assert.equal(message.toString(), 'text for all');
      assert.equal(isBinary, false);
    }
    const third = clients.map((client) => nextMessage(client));
    data.write('TO');
    wss.clients!.forEach((c) => c.send(data));
    for (const [message] of await Promise.all(third)) assert.equal(message.toString(), 'TO everyone');
    for (const client of clients) client.close();
  });

  test('send callback is called once written, and with an error once closed', async () => {
    const { wss, url } = await ourServer();
    const connected = once(wss, 'connection') as Promise<[WebSocket]>;
    const client = new Ws(url);
    const [ws] = await connected;
    const written = await new Promise<Error | null | undefined>((resolve) => ws.send('x', resolve));
    assert.equal(written ?? null, null);
    ws.terminate();
    await closed(ws);
    const error = await new Promise<Error | null | undefined>((resolve) => ws.send('late', resolve));
    assert.equal(error?.message, 'WebSocket is not open: readyState 3 (CLOSED)');
    await closed(client);
  });

  test('verifyClient (async) refuses with its status; handleProtocols picks the subprotocol', async () => {
    const { url } = await ourServer({
      port: 0,
      verifyClient: (info, callback) => setImmediate(() => callback(info.req.url !== '/deny', 403, 'go away')),
      handleProtocols: (protocols) => [...protocols].pop() ?? false,
    });
    const refused = new Ws(`${url}/deny`);
    const [, response] = (await once(refused, 'unexpected-response')) as [unknown, IncomingMessage];
    assert.equal(response.statusCode, 403);
    response.resume();
    refused.on('error', () => {});
    const accepted = new Ws(url, ['a', 'b']);
    await once(accepted, 'open');
    assert.equal(accepted.protocol, 'b');
    accepted.close();
  });

  test('a bad handshake is refused with ws\'s status and message', async () => {
    const { url } = await ourServer();
    const { port } = new URL(url);
    const response = await new Promise<IncomingMessage>((resolve) =>
      httpGet({ host: '127.0.0.1', port, headers: { Connection: 'Upgrade', Upgrade: 'websocket' } }, resolve),
    );
    assert.equal(response.statusCode, 400);
    let body = '';
    for await (const chunk of response) body += chunk;
    assert.equal(body, 'Missing or invalid Sec-WebSocket-Key header');
  });

  test('noServer + handleUpgrade on an existing http server, path checked by shouldHandle', async () => {
    const wss = new WebSocketServer({ noServer: true, path: '/ws' });
    const server = createServer();
    server.on('upgrade', (req, socket, head) => {
      if (!wss.shouldHandle(req)) return void socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => ws.send('from handleUpgrade'));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const client = new Ws(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`);
    const [message] = await nextMessage(client);
    assert.equal(message.toString(), 'from handleUpgrade');
    client.close();
    await closed(client);
  });

  test('a protocol error from the peer: RangeError with ws\'s code, the peer gets 1002', async () => {
    const { wss, url } = await ourServer();
    const connected = once(wss, 'connection') as Promise<[WebSocket]>;
    const client = new Ws(url);
    await once(client, 'open');
    const [ws] = await connected;
    const failed = withTimeout(once(ws, 'error') as Promise<[Error & { code: string }]>, 5000, 'error');
    // An unmasked frame from a client breaks RFC 6455 section 5.1.
    (client as unknown as { _socket: { write(bytes: Buffer): void } })._socket.write(Buffer.from([0x81, 0x01, 0x61]));
    const [error] = await failed;
    assert.ok(error instanceof RangeError);
    assert.equal(error.code, 'WS_ERR_EXPECTED_MASK');
    assert.equal(error.message, 'Invalid WebSocket frame: MASK must be set');
    const [code] = await closed(client);
    assert.equal(code, 1002);
  });
});

describe('our client, a ws server', () => {
  test('open, message, ping and pong events, close with code and reason', async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (peer) => {
      peer.on('message', (data, isBinary) => peer.send(data, { binary: isBinary }));
      peer.on('ping', (data) => peer.send(`ping:${data.toString()}`));
    });
    const ws = new WebSocket(url);
    assert.equal(ws.readyState, WebSocket.CONNECTING);
    assert.equal(ws.url, `${url}/`);
    await withTimeout(once(ws, 'open'), 5000, 'open');
    assert.equal(ws.readyState, WebSocket.OPEN);
    ws.send('hello');
    const [text, isBinary] = await nextMessage(ws);
    assert.deepEqual(text, Buffer.from('hello'));
    assert.equal(isBinary, false);
    const pong = once(ws, 'pong') as Promise<[Buffer]>;
    const answer = nextMessage(ws);
    ws.ping('p1');
    assert.equal((await pong)[0].toString(), 'p1');
    const [pinged] = await answer;
    assert.equal(pinged.toString(), 'ping:p1');
    const done = closed(ws);
    ws.close(1000, 'done');
    assert.equal(ws.readyState, WebSocket.CLOSING);
    const [code, reason] = await done;
    assert.equal(code, 1000);
    assert.equal(reason.toString(), 'done');
    assert.equal(ws.readyState, WebSocket.CLOSED);
  });

  test('binaryType arraybuffer and fragments; addEventListener and onmessage', async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (peer) => {
      peer.send(Buffer.from([1, 2]));
      peer.send('text');
    });
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const events: unknown[] = [];
    const both = new Promise<void>((resolve) => {
      ws.addEventListener('message', (event) => {
        events.push((event as unknown as { data: unknown }).data);
        if (events.length === 2) resolve();
      });
    });
    await withTimeout(both, 5000, 'messages');
    assert.ok(events[0] instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(events[0] as ArrayBuffer), new Uint8Array([1, 2]));
    assert.equal(events[1], 'text');
    ws.binaryType = 'fragments';
    const fragments = new Promise<unknown>((resolve) => {
      ws.onmessage = (event) => resolve(event.data);
    });
    wss.clients.forEach((peer) => peer.send(Buffer.from([3])));
    const data = await withTimeout(fragments, 5000, 'fragments');
    assert.ok(Array.isArray(data));
    assert.deepEqual(Buffer.concat(data as Buffer[]), Buffer.from([3]));
    ws.close();
    await closed(ws);
  });

  test('an unexpected response is an error "Unexpected server response: N" then close 1006', async () => {
    const { url } = await wsServer({ verifyClient: () => false });
    const ws = new WebSocket(url);
    // ws emits both in the same tick: error, then close.
    const failed = once(ws, 'error') as Promise<[Error]>;
    const ended = closed(ws);
    const [error] = await failed;
    assert.equal(error.message, 'Unexpected server response: 401');
    const [code] = await ended;
    assert.equal(code, 1006);
  });

  test('invalid URLs and subprotocols throw as in ws', () => {
    assert.throws(() => new WebSocket('foo'), { name: 'SyntaxError', message: 'Invalid URL: foo' });
    assert.throws(() => new WebSocket('ftp://example.com'), { name: 'SyntaxError' });
    assert.throws(() => new WebSocket('ws://localhost', ['a', 'a']), {
      name: 'SyntaxError',
      message: 'An invalid or duplicated subprotocol was specified',
    });
  });

  test('createWebSocketStream: a Duplex over the connection', async () => {
    const { wss, url } = await wsServer();
    wss.on('connection', (peer) => {
      peer.send('one');
      peer.send('two');
      peer.close();
    });
    const ws = new WebSocket(url);
    const duplex = createWebSocketStream(ws, { encoding: 'utf8' });
    let text = '';
    await withTimeout(
      pipeline(duplex, new Writable({ write: (chunk, _encoding, callback) => ((text += chunk), callback()) })),
      5000,
      'pipeline',
    );
    assert.equal(text, 'onetwo');
  });
});

describe('permessage-deflate', () => {
  test('our server and a ws client agree on it when enabled, and compressed messages cross both ways', async () => {
    const { wss, url } = await ourServer({ port: 0, perMessageDeflate: { threshold: 0 } });
    const connected = once(wss, 'connection') as Promise<[WebSocket, IncomingMessage]>;
    wss.on('connection', (ws) => ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(data, { binary: isBinary })));
    const client = new Ws(url, { perMessageDeflate: { threshold: 0 } });
    await once(client, 'open');
    const [ws] = await connected;
    assert.equal(ws.extensions, 'permessage-deflate');
    assert.match(String(client.extensions), /permessage-deflate/);
    const text = 'compress me '.repeat(100);
    client.send(text);
    const [echoed, isBinary] = await nextMessage(client);
    assert.equal(echoed.toString(), text);
    assert.equal(isBinary, false);
    client.close();
    await closed(client);
  });

  test('off by default on the server: nothing is agreed and the offer is not refused', async () => {
    const { wss, url } = await ourServer();
    const connected = once(wss, 'connection') as Promise<[WebSocket, IncomingMessage]>;
    const client = new Ws(url);
    await once(client, 'open');
    const [ws, req] = await connected;
    assert.match(String(req.headers['sec-websocket-extensions']), /permessage-deflate/);
    assert.equal(ws.extensions, '');
    assert.equal(client.extensions, '');
    client.close();
    await closed(client);
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
