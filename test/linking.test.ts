// Linking the event app into existing HTTP servers: the HTTP App (as in the original's
// linking chapter, TLS included), Express, Fastify and a plain node:http server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import express from 'express';
import Fastify from 'fastify';
import { AsyncWebSocketApp, asyncWebsocketHandler } from '../src/event/app.js';
import { App } from '../src/http/app.js';
import { rejectUpgrade } from '../src/node/upgrade.js';

const certPath = fileURLToPath(new URL('./fixtures/tls/cert.pem', import.meta.url));
const keyPath = fileURLToPath(new URL('./fixtures/tls/key.pem', import.meta.url));

async function until(predicate: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Open a `ws` client, send `text`, resolve with the first reply. */
async function roundTrip(url: string, text: string, options: WebSocket.ClientOptions = {}): Promise<{ reply: string; ws: WebSocket }> {
  const ws = new WebSocket(url, options);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => reject(new Error(`status ${response.statusCode}`)));
  });
  const reply = once(ws, 'message');
  ws.send(text);
  const [data] = await reply;
  return { reply: String(data), ws };
}

function refusedStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => reject(new Error('unexpectedly accepted')));
    ws.once('unexpected-response', (request, response) => {
      resolve(response.statusCode ?? 0);
      request.destroy();
    });
    ws.once('error', () => undefined);
  });
}

function closeCode(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

/** An echo app that counts its events: `>` + the message. */
function echoApp(app = AsyncWebSocketApp.unlinked()) {
  const counts = { connects: 0, disconnects: 0 };
  app
    .withConnectHandler(() => void counts.connects++)
    .withMessageHandler((stream, message) => void stream.send(`>${message.text()}`))
    .withDisconnectHandler(() => void counts.disconnects++);
  return { app, counts };
}

test('App linking: asyncWebsocketHandler(connectHook()) on a route beside HTTP routes', async () => {
  const { app: wsApp, counts } = echoApp();
  const app = new App()
    .withRoute('/', () => 'home page')
    .withWebsocketRoute('/ws', asyncWebsocketHandler(wsApp.connectHook()));
  await app.run();
  const wsUrl = app.url.replace(/^http/, 'ws');
  try {
    const home = await fetch(`${app.url}/`);
    assert.equal(await home.text(), 'home page');
    const { reply, ws } = await roundTrip(`${wsUrl}/ws`, 'hi');
    assert.equal(reply, '>hi');
    assert.equal(wsApp.connectionCount, 1);
    assert.equal(await refusedStatus(`${wsUrl}/elsewhere`), 404);
    // Closing the HTTP app shuts the event app down: close 1001, then the disconnect handler.
    const code = closeCode(ws);
    await app.close();
    assert.equal(await code, 1001);
    assert.deepEqual(counts, { connects: 1, disconnects: 1 });
  } finally {
    await app.close();
  }
});

test('TLS through the linked App (wss://)', async () => {
  const { app: wsApp, counts } = echoApp();
  const app = new App()
    .withCert(certPath, keyPath)
    .withRoute('/', () => 'secure home')
    .withWebsocketRoute('/ws', asyncWebsocketHandler(wsApp.connectHook()));
  await app.run('127.0.0.1:0');
  assert.match(app.url, /^https:/);
  const ca = readFileSync(certPath);
  try {
    const { reply, ws } = await roundTrip(`wss://localhost:${app.address.port}/ws`, 'secret', { ca });
    assert.equal(reply, '>secret');
    ws.close();
    await until(() => counts.disconnects === 1, 'disconnect');
  } finally {
    await app.close();
  }
});

test('Express and the event app share one port', async () => {
  const { app: wsApp, counts } = echoApp();
  const web = express();
  web.get('/hello', (_request, response) => {
    response.send('hello from express');
  });
  const server = web.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const detach = wsApp.attach(server, { path: '/ws' });
  try {
    const response = await fetch(`http://127.0.0.1:${port}/hello`);
    assert.equal(await response.text(), 'hello from express');
    const { reply, ws } = await roundTrip(`ws://127.0.0.1:${port}/ws?room=1`, 'via express');
    assert.equal(reply, '>via express');
    // An upgrade for another path, with no other upgrade listener, is answered with 404.
    assert.equal(await refusedStatus(`ws://127.0.0.1:${port}/nope`), 404);
    ws.close();
    await until(() => counts.disconnects === 1, 'disconnect');
  } finally {
    detach();
    await wsApp.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('Fastify and the event app share one port', async () => {
  const { app: wsApp, counts } = echoApp();
  const fastify = Fastify();
  fastify.get('/hello', async () => ({ hello: 'fastify' }));
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  const { port } = fastify.server.address() as AddressInfo;
  wsApp.attach(fastify.server, { path: '/ws' });
  try {
    const response = await fetch(`http://127.0.0.1:${port}/hello`);
    assert.deepEqual(await response.json(), { hello: 'fastify' });
    const { reply, ws } = await roundTrip(`ws://127.0.0.1:${port}/ws`, 'via fastify');
    assert.equal(reply, '>via fastify');
    const code = closeCode(ws);
    await wsApp.close();
    assert.equal(await code, 1001);
    assert.deepEqual(counts, { connects: 1, disconnects: 1 });
  } finally {
    await wsApp.close();
    await fastify.close();
  }
});

test('plain node:http: attach by path beside another upgrade listener, and handleUpgrade', async () => {
  const first = echoApp(new AsyncWebSocketApp());
  const second = echoApp(AsyncWebSocketApp.unlinked());
  second.app.withUpgradeHook((request) => (request.headers['x-token'] === 'ok' ? undefined : rejectUpgrade(401)));
  const server: Server = createServer((_request, response) => response.end('plain'));
  first.app.attach(server, { path: '/one' });
  // A second listener for other paths: `attach` leaves non-matching upgrades to it.
  server.on('upgrade', (request, socket, head) => {
    if (request.url === '/two') second.app.handleUpgrade(request, socket, head);
    else if (!request.url?.startsWith('/one')) socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'plain');
    const one = await roundTrip(`ws://127.0.0.1:${port}/one`, 'a');
    assert.equal(one.reply, '>a');
    assert.equal(await refusedStatus(`ws://127.0.0.1:${port}/two`), 401);
    const two = await roundTrip(`ws://127.0.0.1:${port}/two`, 'b', { headers: { 'x-token': 'ok' } });
    assert.equal(two.reply, '>b');
    assert.equal(first.app.connectionCount, 1);
    assert.equal(second.app.connectionCount, 1);
    // After close, the first app no longer takes upgrades (it detached from the server).
    await first.app.close();
    assert.equal(server.listenerCount('upgrade'), 1);
    assert.equal(first.counts.disconnects, 1);
  } finally {
    await Promise.all([first.app.close(), second.app.close()]);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a hook-linked app refuses upgrades with 503 while it shuts down', async () => {
  // A client that never answers the close frame keeps the shutdown going for a while.
  const wsApp = AsyncWebSocketApp.unlinked(undefined, { shutdownTimeoutMs: 500 });
  const hook = wsApp.connectHook();
  const server = createServer();
  server.on('upgrade', (request, socket, head) => hook(request, socket, head));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(ws, 'open');
    // Stop the client from reading, so it cannot answer the close frame.
    (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
    await until(() => hook.connectionCount === 1, 'connected');
    const closing = hook.shutdown();
    assert.equal(await refusedStatus(`ws://127.0.0.1:${port}/`), 503);
    await closing;
    assert.equal(hook.connectionCount, 0);
    ws.terminate();
  } finally {
    await wsApp.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
