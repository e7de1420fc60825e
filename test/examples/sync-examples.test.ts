import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openClient as client } from './client.js';
import { startProcess, type RunningProcess } from './spawn.js';

describe('examples/sync-echo', () => {
  let server: RunningProcess;
  before(async () => {
    server = await startProcess(['--import', 'tsx', 'examples/sync-echo/main.ts', '127.0.0.1:0']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'exits cleanly on SIGTERM');
  });

  it('greets, then echoes text and binary unchanged, and logs the peer', async () => {
    const { socket, next, closed: closedCode } = await client(server.url);
    const greeting = await next();
    assert.equal(greeting.isBinary, false);
    assert.match(greeting.data.toString(), /Hello/);
    socket.send('héllo wörld');
    const text = await next();
    assert.deepEqual([text.isBinary, text.data.toString()], [false, 'héllo wörld']);
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    socket.send(bytes);
    const binary = await next();
    assert.equal(binary.isBinary, true);
    assert.deepEqual(binary.data, bytes);
    const port = (await Promise.resolve(socket as unknown as { _socket: { localPort: number } }))._socket.localPort;
    socket.close(1000);
    assert.equal(await closedCode, 1000);
    await server.waitFor(`127.0.0.1:${port}: disconnected`);
    assert.match(server.output(), new RegExp(`127\\.0\\.0\\.1:${port}: connected`));
    assert.match(server.output(), new RegExp(`127\\.0\\.0\\.1:${port}: message received: héllo wörld`));
  });

  it('serves several clients at once', async () => {
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => client(server.url)));
    for (const { next } of clients) await next();
    clients.forEach(({ socket }, i) => socket.send(`client ${i}`));
    for (const [i, { next }] of clients.entries()) assert.equal((await next()).data.toString(), `client ${i}`);
    for (const { socket } of clients) socket.close();
  });
});

describe('examples/sync-broadcast', () => {
  let server: RunningProcess;
  before(async () => {
    server = await startProcess(['--import', 'tsx', 'examples/sync-broadcast/main.ts', '127.0.0.1:0']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'exits cleanly on SIGTERM');
  });

  it('echoes each client and forwards every stdin line to all clients', async () => {
    const a = await client(server.url);
    const b = await client(server.url);
    a.socket.send('from a');
    assert.equal((await a.next()).data.toString(), 'from a');
    b.socket.send('from b');
    assert.equal((await b.next()).data.toString(), 'from b');
    await server.waitFor('from b');
    server.child.stdin.write('first line\nsecond line\n');
    for (const { next } of [a, b]) {
      assert.equal((await next()).data.toString(), 'first line');
      assert.equal((await next()).data.toString(), 'second line');
    }
    await server.waitFor('broadcast to 2 client(s): second line');
    // A client that left no longer receives lines; the other still does.
    a.socket.close(1000);
    assert.equal(await a.closed, 1000);
    await server.waitFor(/disconnected/);
    server.child.stdin.write('third line\n');
    assert.equal((await b.next()).data.toString(), 'third line');
    await server.waitFor('broadcast to 1 client(s): third line');
    b.socket.close();
  });
});
