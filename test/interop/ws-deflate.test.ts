// Interop of permessage-deflate with the `ws` package, both ways: every context-takeover
// setting and window size, fragmented compressed messages, and broadcasts compressed once.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type PerMessageDeflateOptions as WsDeflateOptions } from 'ws';
import { connect } from '../../src/stream/client.js';
import { AsyncWebSocketApp } from '../../src/event/app.js';
import type { PerMessageDeflateOptions } from '../../src/protocol/deflate/negotiate.js';
import { zlibJobsStarted } from '../../src/protocol/deflate/limiter.js';
import { startServer, waitFor, withTimeout, WsClient, type TestServer } from '../helpers/server.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(closers.map((close) => close()));
});

async function echoServer(perMessageDeflate: boolean | PerMessageDeflateOptions): Promise<TestServer> {
  const server = await startServer(async (stream) => {
    for await (const message of stream) await stream.send(message);
  }, { perMessageDeflate });
  closers.push(() => server.close());
  return server;
}

/** Compressible JSON-like text of about `n` bytes, different for each `seed`. */
function jsonText(n: number, seed: number): string {
  let text = '[';
  for (let i = 0; text.length < n; i++) text += `{"id":${seed * 1000 + i},"user":"user-${(seed + i) % 37}","active":${i % 3 === 0},"tags":["a","b"]},`;
  return text.slice(0, n);
}

const SIZES = [0, 1, 100, 1023, 1024, 5000, 70_000, 1_000_000];

/** [label, our server options, ws client options, expected extension parameters in ws] */
const SETTINGS: [string, PerMessageDeflateOptions, WsDeflateOptions][] = [
  ['defaults', {}, {}],
  ['server_no_context_takeover by server policy', { serverNoContextTakeover: true }, {}],
  ['client_no_context_takeover by server policy', { clientNoContextTakeover: true }, {}],
  ['both no context takeover, asked by the client', {}, { serverNoContextTakeover: true, clientNoContextTakeover: true }],
  ...[9, 10, 11, 12, 13, 14, 15].map((bits): [string, PerMessageDeflateOptions, WsDeflateOptions] => [
    `window bits ${bits} both ways`,
    { serverMaxWindowBits: bits, clientMaxWindowBits: bits },
    { serverMaxWindowBits: bits, clientMaxWindowBits: bits },
  ]),
  ['server window asked 10 by the client', {}, { serverMaxWindowBits: 10 }],
];

describe('interop: ws client with compression -> our server', () => {
  for (const [label, ours, theirs] of SETTINGS) {
    test(label, async () => {
      const server = await echoServer({ threshold: 0, ...ours });
      const client = await WsClient.open(`${server.url}/`, undefined, { perMessageDeflate: { threshold: 0, ...theirs } });
      assert.match(client.ws.extensions, /^permessage-deflate/);
      let sent = 0;
      for (const size of SIZES) {
        for (let round = 0; round < 2; round++) {
          const text = jsonText(size, round);
          await client.send(text);
          const echoed = await client.next(10_000);
          assert.equal(echoed.isBinary, false);
          assert.equal(echoed.data.toString(), text);
          sent += size;
        }
      }
      // What came back was compressed: far fewer bytes than the text.
      const socket = (client.ws as unknown as { _socket: { bytesRead: number } })._socket;
      assert.ok(socket.bytesRead < sent / 3, `read ${socket.bytesRead} bytes for ${sent} bytes of text`);
      client.ws.close(1000);
      assert.equal((await client.closed).code, 1000);
    });
  }

  test('binary, and fragmented compressed messages from ws', async () => {
    const server = await echoServer({ threshold: 0 });
    const client = await WsClient.open(`${server.url}/`, undefined, { perMessageDeflate: { threshold: 0 } });
    const parts = [jsonText(3000, 1), jsonText(10, 2), '', jsonText(70_000, 3)];
    for (let i = 0; i < parts.length; i++) await client.send(parts[i]!, { fin: i === parts.length - 1 });
    assert.equal((await client.next()).data.toString(), parts.join(''));
    const bytes = Buffer.from(jsonText(20_000, 4));
    await client.send(bytes, { binary: true });
    const echoed = await client.next();
    assert.equal(echoed.isBinary, true);
    assert.deepEqual(echoed.data, bytes);
    client.ws.close(1000);
    await client.closed;
  });

  test('a server without perMessageDeflate declines; messages still flow', async () => {
    const server = await echoServer(false);
    const client = await WsClient.open(`${server.url}/`, undefined, { perMessageDeflate: true });
    assert.equal(client.ws.extensions, '');
    await client.send(jsonText(5000, 1));
    assert.equal((await client.next()).data.toString(), jsonText(5000, 1));
    client.ws.close(1000);
    await client.closed;
  });
});

async function wsEchoServer(options: WsDeflateOptions): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0, ...options } });
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  closers.push(() => new Promise<void>((resolve) => {
    for (const client of wss.clients) client.terminate();
    wss.close(() => resolve());
  }));
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
}

describe('interop: our client with compression -> ws server', () => {
  for (const [label, serverSide, clientSide] of SETTINGS) {
    test(label, async () => {
      // Here ws is the server (its options from the first column) and we offer the second.
      const url = await wsEchoServer({ ...clientSide, ...(serverSide as WsDeflateOptions) });
      const stream = await connect(url, { perMessageDeflate: { threshold: 0, ...(clientSide as PerMessageDeflateOptions) } });
      for (const size of SIZES) {
        for (let round = 0; round < 2; round++) {
          const text = jsonText(size, round);
          await stream.send(text);
          const echoed = await withTimeout(stream.recv(), 10_000, 'echo');
          assert.equal(echoed.isText, true);
          assert.equal(echoed.text(), text);
        }
      }
      assert.ok(stream.inner.bytesRead < 2_000_000 / 3, `read ${stream.inner.bytesRead} bytes`);
      const info = await stream.close();
      assert.equal(info.code, 1000);
    });
  }

  test('off: nothing is offered', async () => {
    const url = await wsEchoServer({});
    const stream = await connect(url, { perMessageDeflate: false });
    await stream.send(jsonText(4000, 9));
    assert.equal((await stream.recv()).text(), jsonText(4000, 9));
    assert.ok(stream.inner.bytesRead > 4000);
    await stream.close();
  });
});

describe('broadcast with compression', () => {
  test('receivers without server context takeover share one compression per broadcast', async () => {
    const app = new AsyncWebSocketApp(undefined, { perMessageDeflate: { serverNoContextTakeover: true, threshold: 0 } })
      .withMessageHandler((stream, message) => stream.broadcast(message));
    const { port } = await app.run('127.0.0.1:0');
    closers.push(() => app.close());
    const clients = await Promise.all(Array.from({ length: 50 }, () => WsClient.open(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: { threshold: 0 } })));
    await waitFor(() => app.connectionCount === 50, 5000, 'all connected');
    const text = jsonText(4000, 5);
    const before = zlibJobsStarted();
    await clients[0]!.send(text);
    const received = await Promise.all(clients.map((client) => client.next()));
    // One job to inflate the sender's message, one to compress it for all 50.
    assert.equal(zlibJobsStarted() - before, 2);
    for (const message of received) assert.equal(message.data.toString(), text);
    for (const client of clients) client.ws.close(1000);
    await Promise.all(clients.map((client) => client.closed));
  });

  test('receivers with context takeover are each compressed, in order with their other messages', async () => {
    const app = new AsyncWebSocketApp(undefined, { perMessageDeflate: { threshold: 0 } })
      .withMessageHandler((stream, message) => {
        stream.broadcast(message);
        stream.send('after');
      });
    const { port } = await app.run('127.0.0.1:0');
    closers.push(() => app.close());
    const clients = await Promise.all(Array.from({ length: 5 }, () => WsClient.open(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: { threshold: 0 } })));
    await waitFor(() => app.connectionCount === 5, 5000, 'all connected');
    for (let i = 0; i < 3; i++) await clients[0]!.send(jsonText(3000, i));
    for (let i = 0; i < 3; i++) {
      for (const client of clients) assert.equal((await client.next()).data.toString(), jsonText(3000, i));
      assert.equal((await clients[0]!.next()).data.toString(), 'after');
    }
    for (const client of clients) client.ws.close(1000);
    await Promise.all(clients.map((client) => client.closed));
  });
});
