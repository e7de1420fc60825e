// Interop: the `ws` package's client against our server (websocketHandler on node:http).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import type { CloseInfo, WebSocketStream } from '../../src/stream/stream.js';
import type { WebSocketHandler, WebSocketHandlerOptions } from '../../src/stream/handler.js';
import { binaryPayload, startServer, textPayload, waitFor, withTimeout, WsClient, type TestServer } from '../helpers/server.js';

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function serve(handler: WebSocketHandler, options: WebSocketHandlerOptions = {}): Promise<TestServer> {
  const server = await startServer(handler, options);
  servers.push(server);
  return server;
}

const echo: WebSocketHandler = async (stream) => {
  for await (const message of stream) await stream.send(message);
};

/** An echo server that also hands out its streams and their close info. */
async function recordingServer(options: WebSocketHandlerOptions = {}): Promise<{
  server: TestServer;
  streams: WebSocketStream[];
  closes: CloseInfo[];
}> {
  const streams: WebSocketStream[] = [];
  const closes: CloseInfo[] = [];
  const server = await serve(async (stream) => {
    streams.push(stream);
    void stream.closed.then((info) => closes.push(info));
    try {
      for await (const message of stream) await stream.send(message);
    } catch {
      // a failed connection ends the loop; its close info is recorded above
    }
  }, options);
  return { server, streams, closes };
}

describe('interop: ws client -> our server', () => {
  test('text and binary messages echo with their kind and bytes', async () => {
    const server = await serve(echo);
    const client = await WsClient.open(`${server.url}/`);
    await client.send('plain text');
    await client.send('ünïcödé 😀 語');
    await client.send(binaryPayload(1000), { binary: true });
    await client.send(Buffer.from('binary that is valid utf8'), { binary: true });
    const a = await client.next();
    assert.deepEqual([a.isBinary, a.data.toString()], [false, 'plain text']);
    const b = await client.next();
    assert.deepEqual([b.isBinary, b.data.toString()], [false, 'ünïcödé 😀 語']);
    const c = await client.next();
    assert.equal(c.isBinary, true);
    assert.deepEqual(c.data, binaryPayload(1000));
    const d = await client.next();
    assert.deepEqual([d.isBinary, d.data.toString()], [true, 'binary that is valid utf8']);
    client.ws.close();
    assert.equal((await client.closed).code, 1005);
  });

  test("fragmented messages sent with ws's fin: false are reassembled (text split inside characters)", async () => {
    const server = await serve(echo);
    const client = await WsClient.open(`${server.url}/`);
    const text = Buffer.from(textPayload(5000));
    // Cut at offsets that land inside multi-byte characters.
    const cuts = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1000, 2501, 4999];
    let start = 0;
    for (const cut of cuts) {
      await client.send(text.subarray(start, cut), { binary: false, fin: false });
      start = cut;
    }
    await client.send(text.subarray(start), { binary: false, fin: true });
    const bin = binaryPayload(70000, 9);
    await client.send(bin.subarray(0, 0), { binary: true, fin: false });
    await client.send(bin.subarray(0, 65536), { binary: true, fin: false });
    await client.send(bin.subarray(65536), { binary: true, fin: true });
    const gotText = await client.next();
    assert.equal(gotText.isBinary, false);
    assert.deepEqual(gotText.data, text);
    const gotBin = await client.next();
    assert.equal(gotBin.isBinary, true);
    assert.deepEqual(gotBin.data, bin);
    client.ws.close(1000);
  });

  test('pings from ws are answered with the same payload; our pings reach ws and its pong reaches us', async () => {
    const { server, streams } = await recordingServer();
    const client = await WsClient.open(`${server.url}/`);
    const pong = once(client.ws, 'pong');
    client.ws.ping('ws-ping');
    const [payload] = (await withTimeout(pong, 5000, 'pong')) as [Buffer];
    assert.equal(payload.toString(), 'ws-ping');

    await waitFor(() => streams.length === 1, 5000, 'server stream');
    const serverStream = streams[0]!;
    const incoming: Buffer[] = [];
    serverStream.inner.prependListener('data', (chunk: Buffer) => incoming.push(Buffer.from(chunk)));
    const ping = once(client.ws, 'ping');
    await serverStream.ping(Buffer.from([1, 2, 3]));
    const [pingPayload] = (await withTimeout(ping, 5000, 'ping')) as [Buffer];
    assert.deepEqual(pingPayload, Buffer.from([1, 2, 3]));
    // ws's automatic pong: a masked pong frame with the same payload.
    await waitFor(() => Buffer.concat(incoming).length >= 9, 5000, 'pong at the server');
    const frame = Buffer.concat(incoming);
    assert.equal(frame[0], 0x8a);
    assert.equal(frame[1], 0x83);
    assert.deepEqual(Buffer.from(frame.subarray(6, 9).map((byte, i) => byte ^ frame[2 + i]!)), Buffer.from([1, 2, 3]));
    // Messages still flow after control frames.
    await client.send('after pings');
    assert.equal((await client.next()).data.toString(), 'after pings');
    client.ws.close();
  });

  test('close codes both directions: ws closes with 4000 + reason; we close with 4002 + reason', async () => {
    const { server, streams, closes } = await recordingServer();
    const client = await WsClient.open(`${server.url}/`);
    client.ws.close(4000, 'ws says bye');
    assert.deepEqual(await withTimeout(client.closed, 5000, 'ws closed'), { code: 4000, reason: '' });
    await waitFor(() => closes.length === 1, 5000, 'server close info');
    assert.deepEqual(closes[0], { code: 4000, reason: 'ws says bye', wasClean: true });

    const client2 = await WsClient.open(`${server.url}/`);
    await waitFor(() => streams.length === 2, 5000, 'second stream');
    const info = await withTimeout(streams[1]!.close(4002, 'server says bye'), 5000, 'server close');
    assert.equal(info.code, 4002);
    assert.equal(info.wasClean, true);
    assert.deepEqual(await withTimeout(client2.closed, 5000, 'ws closed'), { code: 4002, reason: 'server says bye' });

    // 1001 (going away) from a route shutdown.
    const client3 = await WsClient.open(`${server.url}/`);
    await waitFor(() => streams.length === 3, 5000, 'third stream');
    await server.route.shutdown(1001, 'restart');
    assert.deepEqual(await withTimeout(client3.closed, 5000, 'ws closed'), { code: 1001, reason: 'restart' });
  });

  test('protocol violations from a ws client get the right close code (1007 invalid UTF-8, 1009 too big)', async () => {
    const { server, closes } = await recordingServer({ maxMessageSize: 1000 });
    const client = await WsClient.open(`${server.url}/`);
    // ws does not validate what it sends: a text frame that is not UTF-8.
    await client.send(Buffer.from([0x68, 0xff, 0x69]), { binary: false });
    const closed = await withTimeout(client.closed, 5000, 'ws closed');
    assert.equal(closed.code, 1007);
    await waitFor(() => closes.length === 1, 5000, 'server close');
    assert.equal(closes[0]!.code, 1007);
    assert.equal(closes[0]!.wasClean, false);
    assert.equal(closes[0]!.error?.code, 'WS_ERR_INVALID_UTF8');

    const client2 = await WsClient.open(`${server.url}/`);
    await client2.send(Buffer.alloc(1000, 1), { binary: true });
    assert.equal((await client2.next()).data.length, 1000);
    await client2.send(Buffer.alloc(1001, 1), { binary: true });
    assert.equal((await withTimeout(client2.closed, 5000, 'ws closed')).code, 1009);
    await waitFor(() => closes.length === 2, 5000, 'server close');
    assert.equal(closes[1]!.error?.code, 'WS_ERR_MESSAGE_TOO_BIG');
  });

  test('many concurrent ws clients each get their own echoes', async () => {
    const server = await serve(echo);
    const clients = await Promise.all(Array.from({ length: 50 }, () => WsClient.open(`${server.url}/`)));
    await Promise.all(clients.map((client, i) => client.send(`client ${i}`)));
    const replies = await Promise.all(clients.map((client) => client.next()));
    assert.deepEqual(
      replies.map((r) => r.data.toString()),
      clients.map((_, i) => `client ${i}`),
    );
    for (const client of clients) client.ws.close();
    await Promise.all(clients.map((client) => withTimeout(client.closed, 5000, 'closed')));
    await waitFor(() => server.route.connectionCount === 0, 5000, 'connections closed');
  });

  test('a ws client that offers permessage-deflate connects and echoes', async () => {
    const server = await serve(echo);
    const ws = new WebSocket(`${server.url}/`, { perMessageDeflate: true });
    const client = withTimeout(once(ws, 'open'), 5000, 'open');
    await client;
    const message = once(ws, 'message');
    ws.send('compressible '.repeat(100));
    const [data] = (await withTimeout(message, 5000, 'echo')) as [Buffer];
    assert.equal(data.toString(), 'compressible '.repeat(100));
    ws.close();
  });
});
