// attach(server, { path }): every upgrade request is answered, also with several apps on one
// server, and only real servers are accepted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { AsyncWebSocketApp } from '../../src/event/app.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import { connect } from '../../src/stream/client.js';
import { rawExchange, upgradeRequest, withTimeout } from '../helpers/server.js';

async function listening(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** An app that answers every message with its name. */
function namedApp(name: string): AsyncWebSocketApp {
  return AsyncWebSocketApp.unlinked().withMessageHandler((stream) => stream.send(name));
}

async function nameAt(url: string): Promise<string> {
  const stream = await withTimeout(connect(url), 5000, `connect ${url}`);
  await stream.send('who?');
  const name = (await withTimeout(stream.recv(), 5000, 'answer')).text();
  await stream.close();
  return name;
}

test('several apps attached for different paths: each gets its path, any other path gets 404', async () => {
  const server = createServer();
  const one = namedApp('one');
  const two = namedApp('two');
  one.attach(server, { path: '/one' });
  two.attach(server, { path: '/two/*' });
  const port = await listening(server);
  try {
    assert.equal(await nameAt(`ws://127.0.0.1:${port}/one`), 'one');
    assert.equal(await nameAt(`ws://127.0.0.1:${port}/two/x?y=1`), 'two');
    for (const path of ['/', '/three', '/one/more', '/tw']) {
      const response = await rawExchange(port, upgradeRequest(path), 3000);
      assert.equal(response.status, 404, `${path}: ${response.raw}`);
    }
  } finally {
    await one.close();
    await two.close();
    server.closeAllConnections();
    server.close();
  }
});

test('a detached app no longer takes its path; with every app detached nothing is left listening', async () => {
  const server = createServer();
  const one = namedApp('one');
  const two = namedApp('two');
  const detachOne = one.attach(server, { path: '/one' });
  const detachTwo = two.attach(server, { path: '/two' });
  const port = await listening(server);
  try {
    detachOne();
    assert.equal((await rawExchange(port, upgradeRequest('/one'), 3000)).status, 404);
    assert.equal(await nameAt(`ws://127.0.0.1:${port}/two`), 'two');
    detachTwo();
    assert.equal(server.listenerCount('upgrade'), 0);
    // Attaching again works after everything was detached.
    one.attach(server, { path: '/one' });
    assert.equal(await nameAt(`ws://127.0.0.1:${port}/one`), 'one');
  } finally {
    await one.close();
    await two.close();
    server.closeAllConnections();
    server.close();
  }
});

test('an app attached without a path takes what no app with a matching path took first', async () => {
  const server = createServer();
  const specific = namedApp('specific');
  const rest = namedApp('rest');
  specific.attach(server, { path: '/specific' });
  rest.attach(server);
  const port = await listening(server);
  try {
    assert.equal(await nameAt(`ws://127.0.0.1:${port}/specific`), 'specific');
    assert.equal(await nameAt(`ws://127.0.0.1:${port}/anything`), 'rest');
  } finally {
    await specific.close();
    await rest.close();
    server.closeAllConnections();
    server.close();
  }
});

test('attach refuses what is not a server (an Express app, undefined) with WS_ERR_INVALID_ARGUMENT', () => {
  const app = namedApp('x');
  for (const notAServer of [express(), undefined, {}, 'server']) {
    assert.throws(
      () => app.attach(notAServer as unknown as Server),
      (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT',
    );
  }
  assert.throws(() => app.attach(express() as unknown as Server), /app\.listen\(\)/);
});
