import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openClient } from '../examples/client.js';
import { startProcess } from '../examples/spawn.js';
import { BIN } from './run.js';

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
});
