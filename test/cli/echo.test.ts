import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { connect } from '../../src/index.js';
import { openClient } from '../examples/client.js';
import { startProcess } from '../examples/spawn.js';
import { upgradeRequest } from '../helpers/server.js';
import { BIN } from './run.js';

const cert = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url));

/** Resident memory of a process in bytes (Linux). */
function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

/** Open a raw TCP WebSocket connection, complete the handshake, and stop reading it. */
async function openNonReader(port: number): Promise<Socket> {
  const socket = netConnect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(upgradeRequest('/'));
  let head = '';
  while (!head.includes('\r\n\r\n')) head += ((await once(socket, 'data')) as [Buffer])[0].toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101 /);
  socket.pause(); // from here on nothing is read: the echoes pile up on the server's side
  return socket;
}

/**
 * Write masked binary frames (mask key 0, so the payload goes as it is) to a socket that never
 * reads, waiting for 'drain' each time the socket's buffer is full, until the peer stops
 * taking bytes (no drain within `stallMs`) or `limit` bytes have been taken. Returns the bytes
 * the peer took.
 */
async function floodUntilStalled(socket: Socket, limit: number, stallMs: number): Promise<number> {
  const payload = 64 * 1024;
  const frame = Buffer.alloc(2 + 8 + 4 + payload, 0x61);
  frame[0] = 0x82; // FIN, binary
  frame[1] = 0x80 | 127; // masked, 64-bit length
  frame.writeBigUInt64BE(BigInt(payload), 2);
  frame.fill(0, 10, 14); // the mask key
  const taken = (): number => socket.bytesWritten - socket.writableLength;
  while (taken() < limit) {
    if (socket.write(frame)) continue;
    const drained = await Promise.race([
      once(socket, 'drain').then(() => true),
      new Promise<false>((resolve) => setTimeout(resolve, stallMs, false).unref()),
    ]);
    if (!drained) break;
  }
  return taken();
}

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

  it('a client that writes but never reads cannot grow the server (sync mode)', async () => {
    const server = await startProcess([BIN, 'echo', '--port', '0']);
    const port = Number(new URL(server.url).port);
    const before = residentBytes(server.child.pid!);
    const socket = await openNonReader(port);
    // Without flow control the server would take all 512 MiB and hold every echo in memory.
    const limit = 512 * 1024 * 1024;
    const taken = await floodUntilStalled(socket, limit, 2000);
    const grown = residentBytes(server.child.pid!) - before;
    // What the server can hold: its 64 KiB send high-water mark, its 1 MiB receive queue, one
    // frame in parsing, and the kernel's socket buffers on both sides (a few MiB each).
    assert.ok(taken < 64 * 1024 * 1024, `the server stopped reading after ${taken} bytes`);
    assert.ok(grown < 64 * 1024 * 1024, `server memory grew by ${grown} bytes`);
    socket.destroy();
    // It still serves everyone else.
    const client = await openClient(server.url);
    client.socket.send('still here');
    assert.equal(await client.nextText(), 'still here');
    client.socket.close();
    assert.equal(await server.stop(), 0);
  });
});
