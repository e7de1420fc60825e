// WebSocketStream.send through real sockets: every payload form a Node user passes to `ws`,
// refusals that leave the connection usable, and a send that cannot complete rejecting.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/stream/client.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import type { WebSocketStream } from '../../src/stream/stream.js';
import { startServer, waitFor, withTimeout, type TestServer } from '../helpers/server.js';

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function echoServer(): Promise<TestServer> {
  const server = await startServer(async (stream) => {
    for await (const message of stream) await stream.send(message);
  });
  servers.push(server);
  return server;
}

const isCode = (code: string) => (error: unknown): boolean => error instanceof WebSocketError && error.code === code;

test('send takes strings, Buffers, every TypedArray, DataView, ArrayBuffer, SharedArrayBuffer and Blob, in order', async () => {
  const server = await echoServer();
  const client = await connect(server.url);
  const backing = new ArrayBuffer(8);
  new Uint8Array(backing).set([1, 2, 3, 4, 5, 6, 7, 8]);
  const shared = new SharedArrayBuffer(3);
  new Uint8Array(shared).set([7, 7, 7]);
  const sends: [unknown, boolean, number[] | string][] = [
    ['text', true, 'text'],
    [Buffer.from([1]), false, [1]],
    [new Uint8Array(backing, 1, 2), false, [2, 3]],
    [new Int16Array(backing, 2, 1), false, [3, 4]],
    [new Uint32Array(backing, 4, 1), false, [5, 6, 7, 8]],
    [new DataView(backing, 6, 2), false, [7, 8]],
    [backing, false, [1, 2, 3, 4, 5, 6, 7, 8]],
    [shared, false, [7, 7, 7]],
    [new Uint8Array(shared, 1, 1), false, [7]],
    [new Blob([Buffer.from([42, 43])]), false, [42, 43]],
    ['after the blob', true, 'after the blob'],
  ];
  const pending = sends.map(([payload]) => client.send(payload as never));
  await Promise.all(pending);
  for (const [, isText, expected] of sends) {
    const message = await withTimeout(client.recv(), 5000, 'echo');
    assert.equal(message.isText, isText);
    if (typeof expected === 'string') assert.equal(message.text(), expected);
    else assert.deepEqual([...message.bytes()], expected);
  }
  await client.close();
});

test('an unsupported payload is refused with WS_ERR_INVALID_ARGUMENT and nothing is written', async () => {
  const server = await echoServer();
  const client = await connect(server.url);
  for (const bad of [42, null, undefined, {}, [1, 2, 3], true]) {
    await assert.rejects(client.send(bad as never), isCode('WS_ERR_INVALID_ARGUMENT'));
    await assert.rejects(client.sendFragment(bad as never, true), isCode('WS_ERR_INVALID_ARGUMENT'));
    // (ping() without a payload is an empty ping.)
    if (bad !== undefined) await assert.rejects(client.ping(bad as never), isCode('WS_ERR_INVALID_ARGUMENT'));
  }
  // The connection is intact: the next message is echoed as the first one the server saw.
  await client.send('still here');
  assert.equal((await withTimeout(client.recv(), 5000, 'echo')).text(), 'still here');
  const info = await client.close();
  assert.equal(info.code, 1000);
});

test('the server side refuses bad payloads the same way and keeps the connection', async () => {
  let outcome: unknown;
  const server = await startServer(async (stream) => {
    outcome = await stream.send(new Map() as never).then(() => 'resolved', (error: unknown) => error);
    await stream.send(new ArrayBuffer(3));
    await stream.send('done');
    await stream.recv().catch(() => undefined);
  });
  servers.push(server);
  const client = await connect(server.url);
  assert.deepEqual([...(await withTimeout(client.recv(), 5000, 'binary')).bytes()], [0, 0, 0]);
  assert.equal((await withTimeout(client.recv(), 5000, 'text')).text(), 'done');
  assert.ok(isCode('WS_ERR_INVALID_ARGUMENT')(outcome));
  await client.close();
});

test('a large send to a peer that vanishes rejects with WS_ERR_CLOSED instead of resolving', async () => {
  let sending: Promise<void> | undefined;
  let serverStream: WebSocketStream | undefined;
  const server = await startServer(async (stream) => {
    serverStream = stream;
    sending = stream.send(Buffer.alloc(8 * 1024 * 1024, 1));
    await stream.closed;
  });
  servers.push(server);
  const client = await connect(server.url, { maxMessageSize: 16 * 1024 * 1024 });
  // Do not read: the 8 MiB stays buffered on the server, then the client resets.
  client.inner.pause();
  await waitFor(() => sending !== undefined, 5000, 'server send');
  assert.ok(serverStream!.bufferedAmount > 64 * 1024, 'the send waits for the socket to drain');
  client.inner.resetAndDestroy();
  await assert.rejects(withTimeout(sending!, 5000, 'send outcome'), isCode('WS_ERR_CLOSED'));
});

test('the callbacks between the socket adapter and a stream cannot be replaced from outside', async () => {
  const server = await echoServer();
  const client = await connect(server.url);
  for (const name of ['onMessage', 'onMessageParts', 'onClose', 'nextResult']) {
    assert.throws(() => {
      (client as unknown as Record<string, unknown>)[name] = () => undefined;
    }, TypeError, name);
  }
  // The stream still works as before.
  await client.send('hello');
  assert.equal((await withTimeout(client.recv(), 5000, 'echo')).text(), 'hello');
  await client.close();
});
