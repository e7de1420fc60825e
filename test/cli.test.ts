import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { connect } from '../src/index.js';
import { openClient } from './examples/client.js';
import { startProcess } from './examples/spawn.js';

// These drive the built command (bin/humphrey-ws.js -> dist/), as `npx humphrey-ws` does.
const BIN = 'bin/humphrey-ws.js';
const cert = readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url));

describe('humphrey-ws echo', () => {
  for (const mode of ['sync', 'async']) {
    it(`--mode ${mode} echoes text and binary on any path and exits 0 on SIGINT`, async () => {
      const server = await startProcess([BIN, 'echo', '--host', '127.0.0.1', '--port', '0', '--mode', mode]);
      assert.match(server.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
      const client = await openClient(`${server.url}/any/path?x=1`);
      client.socket.send('text ✓');
      const text = await client.next();
      assert.deepEqual([text.isBinary, text.data.toString()], [false, 'text ✓']);
      const bytes = Buffer.from([0, 0xff, 0x80, 0x7f]);
      client.socket.send(bytes);
      const binary = await client.next();
      assert.equal(binary.isBinary, true);
      assert.deepEqual(binary.data, bytes);
      // SIGINT closes the client with 1001 and the process exits 0.
      server.child.kill('SIGINT');
      assert.equal(await client.closed, 1001);
      assert.equal(await server.stop(), 0);
    });
  }

  it('serves wss:// with --cert and --key', async () => {
    const server = await startProcess([
      BIN, 'echo', '--port', '0',
      '--cert', 'test/fixtures/tls/cert.pem', '--key', 'test/fixtures/tls/key.pem',
    ]);
    assert.match(server.url, /^wss:\/\//);
    const stream = await connect(server.url, { tls: { ca: cert } });
    await stream.send('secure');
    assert.equal((await stream.recv()).text(), 'secure');
    await stream.close();
    assert.equal(await server.stop(), 0);
  });

  it('--max-message-size closes with 1009 on a bigger message', async () => {
    const server = await startProcess([BIN, 'echo', '--port', '0', '--max-message-size', '1000']);
    const client = await openClient(server.url);
    client.socket.send(Buffer.alloc(1000, 1));
    assert.equal((await client.next()).data.length, 1000);
    client.socket.send(Buffer.alloc(1001, 1));
    assert.equal(await client.closed, 1009);
    await server.stop();
  });

  it('refuses bad arguments with a message and a non-zero exit', () => {
    for (const args of [['echo', '--port', 'abc'], ['echo', '--nope', '1'], ['frobnicate'], ['echo', '--mode', 'threads'], ['broadcast', '--backpressure', 'maybe']]) {
      const result = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
      assert.notEqual(result.status, 0, args.join(' '));
      assert.ok(result.stderr.length > 0, `explains ${args.join(' ')}`);
    }
  });
});

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
