// acceptUpgrade: the deadline of an asynchronous onUpgrade hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptUpgrade, DEFAULT_UPGRADE_TIMEOUT_MS, type AcceptedUpgrade, type UpgradeOptions } from '../../src/node/upgrade.js';
import { rawExchange, upgradeRequest, waitFor, withTimeout } from '../helpers/server.js';

/** A node:http server whose upgrades go through `acceptUpgrade(options)`; records the results. */
async function serve(options: UpgradeOptions): Promise<{ port: number; results: (AcceptedUpgrade | null)[]; sockets: Duplex[]; close(): void }> {
  const results: (AcceptedUpgrade | null)[] = [];
  const sockets: Duplex[] = [];
  const server = createServer();
  server.on('upgrade', (request: IncomingMessage, socket: Duplex) => {
    sockets.push(socket);
    void acceptUpgrade(request, socket, options).then((result) => {
      results.push(result);
      if (result !== null) socket.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    results,
    sockets,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

test('the default deadline of an asynchronous onUpgrade is 10 s', () => {
  assert.equal(DEFAULT_UPGRADE_TIMEOUT_MS, 10_000);
});

test('an onUpgrade that never settles: 503 after upgradeTimeoutMs, and the socket is freed', async () => {
  let calls = 0;
  const server = await serve({
    upgradeTimeoutMs: 200,
    onUpgrade: () => {
      calls++;
      return new Promise(() => {});
    },
  });
  try {
    const started = Date.now();
    const response = await rawExchange(server.port, upgradeRequest('/'));
    const took = Date.now() - started;
    assert.equal(response.status, 503);
    assert.ok(took >= 190 && took < 3000, `answered after ${took} ms`);
    assert.equal(calls, 1);
    assert.deepEqual(server.results, [null]);
    await waitFor(() => (server.sockets[0] as Socket).destroyed, 3000, 'the socket to be destroyed');
  } finally {
    server.close();
  }
});

test('an onUpgrade that answers after its deadline is ignored (no 101 after the 503)', async () => {
  let release!: (value: undefined) => void;
  const server = await serve({ upgradeTimeoutMs: 100, onUpgrade: () => new Promise((resolve) => (release = resolve)) });
  try {
    const response = await rawExchange(server.port, upgradeRequest('/'));
    assert.equal(response.status, 503);
    release(undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(server.results, [null]);
    assert.doesNotMatch(response.raw, /101 Switching Protocols/);
  } finally {
    server.close();
  }
});

test('an onUpgrade that rejects after its deadline leaves no unhandled rejection', async () => {
  let fail!: (error: Error) => void;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  const server = await serve({ upgradeTimeoutMs: 100, onUpgrade: () => new Promise((_resolve, reject) => (fail = reject)) });
  try {
    assert.equal((await rawExchange(server.port, upgradeRequest('/'))).status, 503);
    fail(new Error('too late'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    server.close();
  }
});

test('an onUpgrade that settles in time is not cut short', async () => {
  const server = await serve({
    upgradeTimeoutMs: 2000,
    onUpgrade: () => new Promise((resolve) => setTimeout(() => resolve({ data: 'late but fine' }), 100)),
  });
  try {
    const response = await withTimeout(rawExchange(server.port, upgradeRequest('/')), 5000, 'exchange');
    assert.equal(response.status, 101);
    assert.deepEqual(server.results, [{ protocol: undefined, data: 'late but fine', deflate: null }]);
  } finally {
    server.close();
  }
});
