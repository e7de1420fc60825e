// Interop: our client (`connect`) against the `ws` package's WebSocketServer.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket, type ServerOptions } from 'ws';
import { connect } from '../../src/stream/client.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import { binaryPayload, textPayload, waitFor, withTimeout } from '../helpers/server.js';

interface WsServer {
  url: string;
  wss: WebSocketServer;
  /** Server-side sockets in connection order, with what each saw. */
  peers: { ws: WebSocket; request: IncomingMessage; pings: Buffer[]; pongs: Buffer[]; close?: { code: number; reason: string } }[];
  close(): Promise<void>;
}

const servers: WsServer[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

/** A ws echo server on 127.0.0.1:0 that records pings, pongs and close codes. */
async function wsServer(options: ServerOptions = {}): Promise<WsServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  await once(wss, 'listening');
  const peers: WsServer['peers'] = [];
  wss.on('connection', (ws, request) => {
    const peer: WsServer['peers'][number] = { ws, request, pings: [], pongs: [] };
    peers.push(peer);
    ws.on('message', (data: Buffer, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('ping', (data: Buffer) => peer.pings.push(data));
    ws.on('pong', (data: Buffer) => peer.pongs.push(data));
    ws.on('close', (code, reason) => (peer.close = { code, reason: reason.toString() }));
    ws.on('error', () => undefined);
  });
  const server: WsServer = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    wss,
    peers,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  servers.push(server);
  return server;
}

describe('interop: our client -> ws server', () => {
  test('text and binary messages echo with their kind and bytes', async () => {
    const server = await wsServer();
    const stream = await connect(`${server.url}/path?q=1`);
    assert.equal(server.peers[0]?.request.url, '/path?q=1');
    await stream.send('hello ws');
    await stream.send('ünïcödé 😀');
    await stream.send(binaryPayload(5000));
    await stream.send(new Uint8Array(0));
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await withTimeout(stream.recv(), 5000, `echo ${i}`));
    assert.deepEqual(
      got.map((m) => [m.isText, m.bytes().toString('hex')]),
      [
        [true, Buffer.from('hello ws').toString('hex')],
        [true, Buffer.from('ünïcödé 😀').toString('hex')],
        [false, binaryPayload(5000).toString('hex')],
        [false, ''],
      ],
    );
    await stream.close();
  });

  test('sendFragment messages (text cut inside characters) are reassembled by ws', async () => {
    const server = await wsServer();
    const stream = await connect(`${server.url}/`);
    const text = Buffer.from(textPayload(3000));
    await stream.sendFragment(text.subarray(0, 1), false, true);
    await stream.sendFragment(text.subarray(1, 2), false);
    await stream.sendFragment(text.subarray(2, 0), false);
    await stream.sendFragment(text.subarray(2, 1501), false);
    await stream.sendFragment(text.subarray(1501), true);
    const bin = binaryPayload(100_000, 4);
    await stream.sendFragment(bin.subarray(0, 65536), false, false);
    await stream.sendFragment(bin.subarray(65536), true);
    const gotText = await withTimeout(stream.recv(), 5000, 'text');
    assert.equal(gotText.isText, true);
    assert.deepEqual(gotText.bytes(), text);
    const gotBin = await withTimeout(stream.recv(), 5000, 'binary');
    assert.equal(gotBin.isText, false);
    assert.deepEqual(gotBin.bytes(), bin);
    await stream.close();
  });

  test('our ping reaches ws and is answered; a ws ping is answered by us', async () => {
    const server = await wsServer();
    const stream = await connect(`${server.url}/`);
    const incoming: Buffer[] = [];
    stream.inner.prependListener('data', (chunk: Buffer) => incoming.push(Buffer.from(chunk)));
    await stream.ping('ours');
    await waitFor(() => server.peers[0]?.pings.length === 1, 5000, 'ws to see the ping');
    assert.equal(server.peers[0]!.pings[0]!.toString(), 'ours');
    await waitFor(() => Buffer.concat(incoming).length >= 6, 5000, 'pong');
    assert.deepEqual(Buffer.concat(incoming).subarray(0, 6), Buffer.from([0x8a, 0x04, ...Buffer.from('ours')]));

    server.peers[0]!.ws.ping('theirs');
    await waitFor(() => server.peers[0]!.pongs.length === 1, 5000, 'ws to get our pong');
    assert.equal(server.peers[0]!.pongs[0]!.toString(), 'theirs');
    await stream.close();
  });

  test('close codes both directions', async () => {
    const server = await wsServer();
    const stream = await connect(`${server.url}/`);
    const info = await withTimeout(stream.close(4100, 'client bye'), 5000, 'close');
    assert.equal(info.code, 4100);
    assert.equal(info.wasClean, true);
    await waitFor(() => server.peers[0]?.close !== undefined, 5000, 'ws close');
    assert.deepEqual(server.peers[0]!.close, { code: 4100, reason: 'client bye' });

    const stream2 = await connect(`${server.url}/`);
    await waitFor(() => server.peers.length === 2, 5000, 'second peer');
    server.peers[1]!.ws.close(4200, 'server bye');
    assert.deepEqual(await withTimeout(stream2.closed, 5000, 'closed'), { code: 4200, reason: 'server bye', wasClean: true });
    await waitFor(() => server.peers[1]!.close !== undefined, 5000, 'ws close');
    assert.equal(server.peers[1]!.close!.code, 4200);

    // A close frame without a code is reported as 1005.
    const stream3 = await connect(`${server.url}/`);
    await waitFor(() => server.peers.length === 3, 5000, 'third peer');
    server.peers[2]!.ws.close();
    assert.deepEqual(await withTimeout(stream3.closed, 5000, 'closed'), { code: 1005, reason: '', wasClean: true });

    // A ws server that drops the TCP connection: 1006.
    const stream4 = await connect(`${server.url}/`);
    await waitFor(() => server.peers.length === 4, 5000, 'fourth peer');
    server.peers[3]!.ws.terminate();
    const lost = await withTimeout(stream4.closed, 5000, 'closed');
    assert.equal(lost.code, 1006);
    assert.equal(lost.wasClean, false);
  });

  test('ws protocol errors reach us as close codes (1009 over maxPayload)', async () => {
    const server = await wsServer({ maxPayload: 100 });
    const stream = await connect(`${server.url}/`);
    await stream.send(Buffer.alloc(101));
    const info = await withTimeout(stream.closed, 5000, 'closed');
    assert.equal(info.code, 1009);
  });

  test('subprotocols: ws handleProtocols chooses, stream.protocol reports it', async () => {
    const server = await wsServer({ handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false) });
    const stream = await connect(`${server.url}/`, { protocols: ['a', 'b'] });
    assert.equal(stream.protocol, 'b');
    assert.equal(server.peers[0]!.ws.protocol, 'b');
    const none = await connect(`${server.url}/`, { protocols: ['c'] });
    assert.equal(none.protocol, undefined);
    await Promise.all([stream.close(), none.close()]);
  });

  test('a ws server refusing the upgrade (verifyClient 401) rejects connect with WS_ERR_HANDSHAKE', async () => {
    const server = await wsServer({ verifyClient: (_info, done) => done(false, 401, 'Unauthorized') });
    await assert.rejects(withTimeout(connect(`${server.url}/`), 5000, 'refused'), (error: unknown) => {
      return error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE' && /401/.test(error.message);
    });
  });

  test('a ws server with permessage-deflate enabled works with our client', async () => {
    const server = await wsServer({ perMessageDeflate: true });
    const stream = await connect(`${server.url}/`);
    await stream.send('x'.repeat(10_000));
    assert.equal((await withTimeout(stream.recv(), 5000, 'echo')).text(), 'x'.repeat(10_000));
    await stream.close();
  });
});
