import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { openClient } from '../examples/client.js';
import { startProcess } from '../examples/spawn.js';
import { BIN } from './run.js';
import { RedisServer } from '../broker/redis-server.js';

describe('humphrey-ws broadcast', () => {
  it('sends every message from any client to every client, the sender included', async () => {
    const server = await startProcess([BIN, 'broadcast', '--port', '0', '--heartbeat', '1000']);
    const clients = await Promise.all(Array.from({ length: 10 }, () => openClient(server.url)));
    for (let i = 0; i < clients.length; i++) clients[i]!.socket.send(`from ${i}`);
    for (const client of clients) {
      const received = new Set<string>();
      for (let i = 0; i < clients.length; i++) received.add(await client.nextText());
      assert.equal(received.size, clients.length);
      for (let i = 0; i < clients.length; i++) assert.ok(received.has(`from ${i}`));
    }
    server.child.kill('SIGTERM');
    for (const client of clients) assert.equal(await client.closed, 1001);
    assert.equal(await server.stop(), 0);
  });
  it('--workers 2: every message reaches every client, whichever worker it is on, once', async () => {
    const server = await startProcess([BIN, 'broadcast', '--port', '0', '--workers', '2'], 30_000);
    // node:cluster hands connections to the workers in turn: these sit on both.
    const clients = [];
    for (let i = 0; i < 6; i++) clients.push(await openClient(server.url));
    for (let i = 0; i < clients.length; i++) clients[i]!.socket.send(`from ${i}`);
    for (const client of clients) {
      const received = new Set<string>();
      for (let i = 0; i < clients.length; i++) received.add(await client.nextText());
      assert.deepEqual([...received].sort(), clients.map((_, i) => `from ${i}`));
    }
    // One SIGTERM (a second one would mean "stop at once"): the workers close their clients, then all exit.
    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    for (const client of clients) assert.equal(await client.closed, 1001);
    assert.deepEqual(await exited, [0, null]);
  });

  it('--redis: two servers on one Redis carry each other\'s broadcasts', async () => {
    const redis = await RedisServer.start();
    try {
      const servers = await Promise.all([1, 2].map(() => startProcess([BIN, 'broadcast', '--port', '0', '--redis', redis.url])));
      const a = await openClient(servers[0]!.url);
      const b = await openClient(servers[1]!.url);
      // Both processes listen to the broadcast channel before anything is sent.
      const deadline = Date.now() + 10_000;
      while ((await redis.command('PUBSUB', 'NUMSUB', 'humphrey-ws:all'))[1] !== '2' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      a.socket.send('from a');
      assert.equal(await a.nextText(), 'from a');
      assert.equal(await b.nextText(), 'from a');
      b.socket.send('from b');
      assert.equal(await a.nextText(), 'from b');
      assert.equal(await b.nextText(), 'from b');
      for (const server of servers) server.child.kill('SIGTERM');
      assert.equal(await a.closed, 1001);
      assert.equal(await b.closed, 1001);
      for (const server of servers) assert.equal(await server.stop(), 0);
    } finally {
      await redis.stop();
    }
  });
});
