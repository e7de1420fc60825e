import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openClient } from './client.js';
import { startProcess, type RunningProcess } from './spawn.js';

describe('examples/async-echo', () => {
  let server: RunningProcess;
  before(async () => {
    server = await startProcess(['--import', 'tsx', 'examples/async-echo/main.ts', '127.0.0.1:0']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'exits cleanly on SIGTERM');
  });

  it('welcomes, acknowledges every message and logs connect/message/disconnect', async () => {
    const client = await openClient(server.url);
    const peer = `127.0.0.1:${client.localPort}`;
    assert.equal(await client.nextText(), `Welcome, ${peer}!`);
    client.socket.send('one');
    client.socket.send('two');
    assert.equal(await client.nextText(), 'Message received: one');
    assert.equal(await client.nextText(), 'Message received: two');
    client.socket.close(1000);
    assert.equal(await client.closed, 1000);
    await server.waitFor(`${peer}: client disconnected`);
    const log = server.output();
    assert.ok(log.indexOf(`${peer}: client connected`) < log.indexOf(`${peer}: message received: one`));
    assert.ok(log.indexOf(`${peer}: message received: two`) < log.indexOf(`${peer}: client disconnected`));
  });

  it('keeps a client that answers pings (the heartbeat pings every 5 s)', async () => {
    const client = await openClient(server.url);
    await client.next();
    let pings = 0;
    client.socket.on('ping', () => pings++);
    await new Promise((resolve) => setTimeout(resolve, 5600));
    assert.ok(pings >= 1, 'at least one ping arrived');
    client.socket.send('still here');
    assert.equal(await client.nextText(), 'Message received: still here');
    client.socket.close();
  });
});

describe('examples/async-broadcast', () => {
  let server: RunningProcess;
  before(async () => {
    server = await startProcess(['--import', 'tsx', 'examples/async-broadcast/main.ts', '127.0.0.1:0']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'exits cleanly on SIGTERM');
  });

  it('echoes, announces every connect to all, and broadcasts stdin lines', async () => {
    const a = await openClient(server.url);
    assert.equal(await a.nextText(), `Welcome, 127.0.0.1:${a.localPort}!`);
    const b = await openClient(server.url);
    const welcomeB = `Welcome, 127.0.0.1:${b.localPort}!`;
    assert.equal(await a.nextText(), welcomeB);
    assert.equal(await b.nextText(), welcomeB);
    a.socket.send('echo me');
    assert.equal(await a.nextText(), 'echo me');
    server.child.stdin.write('hello everyone\n');
    assert.equal(await a.nextText(), 'hello everyone');
    assert.equal(await b.nextText(), 'hello everyone');
    await server.waitFor('broadcast to 2 client(s), 0 skipped: hello everyone');
    a.socket.close();
    b.socket.close();
  });
});

describe('examples/linking', () => {
  let server: RunningProcess;
  before(async () => {
    server = await startProcess(['--import', 'tsx', 'examples/linking/main.ts', '127.0.0.1:0']);
  });
  after(async () => {
    assert.equal(await server.stop(), 0, 'exits cleanly on SIGTERM');
  });

  it('serves the HTTP route and the event app on /ws from one port', async () => {
    const response = await fetch(`${server.url}/`);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /Hello from the HTTP app/);
    const client = await openClient(`${server.url.replace(/^http/, 'ws')}/ws`);
    client.socket.send('linked');
    assert.equal(await client.nextText(), 'linked');
    client.socket.close(1000);
    assert.equal(await client.closed, 1000);
    await server.waitFor('client disconnected');
  });
});
