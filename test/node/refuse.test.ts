// The one way to refuse an upgrade, and the sockets it is used on: a refused or pending
// handshake whose client resets the connection must not crash any of the servers, a refused
// peer that keeps its side open is let go after the linger, and the answer is complete.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { App } from '../../src/http/app.js';
import { AsyncWebSocketApp } from '../../src/event/app.js';
import { websocketHandler } from '../../src/stream/handler.js';
import { connect } from '../../src/stream/client.js';
import { REFUSE_LINGER_MS, refuseUpgrade } from '../../src/node/refuse.js';
import { startProcess } from '../examples/spawn.js';
import { parseRaw, rawExchange, sleep, upgradeRequest, waitFor, withTimeout } from '../helpers/server.js';

/** An upgrade request the handshake refuses with 400: it has no Sec-WebSocket-Key. */
const NO_KEY = 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n';

type ResetMoment = 'at once' | 'after the answer' | 'after a while';

/**
 * Send `request`, then reset the TCP connection (RST): at once, when the first bytes of the
 * answer arrive, or after `waitMs` (while the server is still deciding).
 */
async function sendAndReset(port: number, request: string, moment: ResetMoment, waitMs = 50): Promise<void> {
  const socket = netConnect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(request);
  if (moment === 'after the answer') await withTimeout(once(socket, 'data'), 5000, 'the answer');
  else if (moment === 'after a while') await sleep(waitMs);
  socket.resetAndDestroy();
  await once(socket, 'close');
}

/** Attack `port` with refused handshakes reset at every moment, several times each. */
async function refusedThenReset(port: number, request = NO_KEY): Promise<void> {
  for (let round = 0; round < 10; round++) {
    await Promise.all([
      sendAndReset(port, request, 'at once'),
      sendAndReset(port, request, 'after the answer'),
      sendAndReset(port, request, 'after a while', 5),
    ]);
  }
}

/** A normal client still gets its message echoed. */
async function echoWorks(url: string): Promise<void> {
  const stream = await withTimeout(connect(url), 5000, 'connect');
  await stream.send('still here');
  assert.equal((await withTimeout(stream.recv(), 5000, 'echo')).text(), 'still here');
  await stream.close();
}

/** An `onUpgrade` hook that takes `ms` to accept, counting its calls and returns. */
function slowHook(ms: number): { hook: () => Promise<undefined>; calls: number; returned: number } {
  const state = {
    calls: 0,
    returned: 0,
    hook: async (): Promise<undefined> => {
      state.calls++;
      await sleep(ms);
      state.returned++;
      return undefined;
    },
  };
  return state;
}

describe('a refused handshake followed by a reset crashes nothing', () => {
  for (const mode of ['sync', 'async']) {
    test(`humphrey-ws echo --mode ${mode}`, async () => {
      const server = await startProcess(['bin/humphrey-ws.js', 'echo', '--port', '0', '--mode', mode]);
      try {
        const port = Number(new URL(server.url).port);
        await refusedThenReset(port);
        await sleep(100);
        assert.equal(server.child.exitCode, null, `the server exited: ${server.output()}`);
        await echoWorks(server.url);
      } finally {
        await server.stop();
      }
    });
  }

  test('App with a websocketHandler route (plain and with an async onUpgrade)', async () => {
    const hook = slowHook(30);
    const app = new App()
      .withWebsocketRoute('/slow', websocketHandler(async (stream) => {
        for await (const message of stream) await stream.send(message);
      }, { onUpgrade: hook.hook }))
      .withWebsocketRoute('/*', websocketHandler(async (stream) => {
        for await (const message of stream) await stream.send(message);
      }));
    const { port } = await app.run('127.0.0.1:0');
    try {
      await refusedThenReset(port);
      // An unknown method on a WebSocket path, and a path no route takes, are refused too.
      await refusedThenReset(port, NO_KEY.replace('GET', 'POST'));
      for (let i = 0; i < 10; i++) await sendAndReset(port, upgradeRequest('/slow'), 'after a while', 5);
      await waitFor(() => hook.returned === hook.calls, 5000, 'the pending hooks to return');
      await echoWorks(`ws://127.0.0.1:${port}/`);
    } finally {
      await app.close();
    }
  });

  test('AsyncWebSocketApp.run() (plain and with an async onUpgrade)', async () => {
    const plain = new AsyncWebSocketApp().withMessageHandler((stream, message) => stream.send(message));
    const hook = slowHook(30);
    const hooked = new AsyncWebSocketApp(undefined, { onUpgrade: hook.hook }).withMessageHandler((stream, message) => stream.send(message));
    await plain.run();
    await hooked.run();
    try {
      await refusedThenReset(plain.address.port);
      for (let i = 0; i < 10; i++) await sendAndReset(hooked.address.port, upgradeRequest('/'), 'after a while', 5);
      await waitFor(() => hook.returned === hook.calls && hook.calls === 10, 5000, 'the pending hooks to return');
      await sleep(50);
      assert.equal(hooked.connectionCount, 0, 'a reset connection was added to the app');
      await echoWorks(plain.url);
      await echoWorks(hooked.url);
    } finally {
      await plain.close();
      await hooked.close();
    }
  });

  test('a plain node:http server with a websocketHandler route and an async onUpgrade', async () => {
    const hook = slowHook(30);
    const route = websocketHandler(async (stream) => {
      for await (const message of stream) await stream.send(message);
    }, { onUpgrade: hook.hook });
    const server = createServer();
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => route(request, socket, head, undefined));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      await refusedThenReset(port);
      for (let i = 0; i < 10; i++) await sendAndReset(port, upgradeRequest('/'), 'after a while', 5);
      await waitFor(() => hook.returned === hook.calls, 5000, 'the pending hooks to return');
      await sleep(50);
      assert.equal(route.connectionCount, 0);
      await echoWorks(`ws://127.0.0.1:${port}/`);
    } finally {
      await route.shutdown();
      server.closeAllConnections();
      server.close();
    }
  });

  test('an event app attached to a node:http server', async () => {
    const hook = slowHook(30);
    const app = AsyncWebSocketApp.unlinked(undefined, { onUpgrade: hook.hook }).withMessageHandler((stream, message) => stream.send(message));
    const server = createServer();
    app.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      await refusedThenReset(port);
      for (let i = 0; i < 10; i++) await sendAndReset(port, upgradeRequest('/'), 'after a while', 5);
      await waitFor(() => hook.returned === hook.calls, 5000, 'the pending hooks to return');
      await sleep(50);
      assert.equal(app.connectionCount, 0);
      await echoWorks(`ws://127.0.0.1:${port}/`);
    } finally {
      await app.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('refuseUpgrade', () => {
  const servers: NetServer[] = [];
  after(() => {
    for (const server of servers) server.close();
  });

  /** A raw TCP server whose connections are handed to `onSocket` (no node:http). */
  async function rawServer(onSocket: (socket: Socket) => void): Promise<number> {
    const net = createNetServer({ allowHalfOpen: true }, onSocket);
    net.listen(0, '127.0.0.1');
    await once(net, 'listening');
    servers.push(net);
    return (net.address() as AddressInfo).port;
  }

  test('writes the status line, headers and body, then ends the connection', async () => {
    const port = await rawServer((socket) => refuseUpgrade(socket, 403, 'no entry', { 'X-Why': 'test' }));
    const response = await rawExchange(port, '');
    assert.equal(response.status, 403);
    assert.equal(response.headers['x-why'], 'test');
    assert.equal(response.headers['connection'], 'close');
    assert.equal(response.headers['content-length'], '8');
    assert.equal(response.body, 'no entry');
    assert.match(response.raw, /^HTTP\/1\.1 403 Forbidden\r\n/);
  });

  test(`destroys the socket ${REFUSE_LINGER_MS} ms after answering when the peer keeps its side open`, async () => {
    let closedAt = 0;
    let refusedAt = 0;
    const port = await rawServer((socket) => {
      refusedAt = Date.now();
      refuseUpgrade(socket, 400, 'bad');
      socket.on('close', () => (closedAt = Date.now()));
    });
    // The peer reads the answer but never ends its side.
    const client = netConnect(port, '127.0.0.1');
    client.on('error', () => {});
    client.allowHalfOpen = true;
    let received = '';
    client.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await once(client, 'end');
    assert.equal(parseRaw(received).status, 400);
    await waitFor(() => closedAt !== 0, REFUSE_LINGER_MS + 3000, 'the refused socket to be destroyed');
    const lingered = closedAt - refusedAt;
    assert.ok(lingered >= REFUSE_LINGER_MS - 50, `destroyed after ${lingered} ms`);
    client.destroy();
  });

  test('a peer that closes at once leaves no linger timer behind', async () => {
    let closed = false;
    const port = await rawServer((socket) => {
      refuseUpgrade(socket, 400, 'bad');
      socket.on('close', () => (closed = true));
    });
    const timersBefore = process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    const response = await rawExchange(port, '');
    assert.equal(response.status, 400);
    await waitFor(() => closed, 3000, 'the refused socket to close');
    await sleep(10);
    const timersAfter = process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
    assert.ok(timersAfter <= timersBefore, `${timersAfter - timersBefore} timer(s) left behind`);
  });

  test('a peer that resets while it is being refused: no error escapes, the socket is destroyed', async () => {
    const refused: Socket[] = [];
    const port = await rawServer((socket) => {
      refuseUpgrade(socket, 400, 'bad ' + 'x'.repeat(256 * 1024));
      refused.push(socket);
    });
    for (let i = 0; i < 20; i++) {
      const client = netConnect(port, '127.0.0.1');
      client.on('error', () => {});
      await once(client, 'connect');
      client.write('GET / HTTP/1.1\r\n');
      client.resetAndDestroy();
    }
    await waitFor(() => refused.length === 20 && refused.every((socket) => socket.destroyed), 3000, 'every refused socket to be destroyed');
  });
});
