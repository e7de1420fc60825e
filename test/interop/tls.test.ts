// wss:// round trips with the test certificate (CN=localhost, SAN 127.0.0.1): our client and the
// ws client against our handler on node:https, and our client against a ws server on https.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { connect } from '../../src/stream/client.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import type { WebSocketStream } from '../../src/stream/stream.js';
import { binaryPayload, startServer, tlsFixture, waitFor, withTimeout, WsClient, type TestServer } from '../helpers/server.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

async function wssEcho(): Promise<{ server: TestServer; streams: WebSocketStream[] }> {
  const streams: WebSocketStream[] = [];
  const server = await startServer(
    async (stream) => {
      streams.push(stream);
      for await (const message of stream) await stream.send(message);
    },
    {},
    { tls: true },
  );
  cleanups.push(() => server.close());
  return { server, streams };
}

const ca = tlsFixture.cert;

describe('interop: wss://', () => {
  test('our client -> our handler on node:https, by IP and by name; inner is a TLSSocket on both sides', async () => {
    const { server, streams } = await wssEcho();
    assert.equal(server.url, `wss://127.0.0.1:${server.port}`);
    // Connecting by IP must not set an IP address as the TLS server name (RFC 6066, DEP0123).
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    for (const url of [`wss://127.0.0.1:${server.port}/secure`, `wss://localhost:${server.port}/secure`]) {
      const stream = await connect(url, { tls: { ca } });
      assert.ok(stream.inner instanceof TLSSocket);
      assert.equal((stream.inner as TLSSocket).encrypted, true);
      assert.equal((stream.inner as TLSSocket).authorized, true);
      await stream.send('over tls');
      const big = binaryPayload(1 << 20, 11);
      await stream.send(big);
      assert.equal((await withTimeout(stream.recv(), 5000, 'text')).text(), 'over tls');
      const echoed = await withTimeout(stream.recv(), 5000, 'binary');
      assert.equal(echoed.isText, false);
      assert.deepEqual(echoed.bytes(), big);
      const serverStream = streams[streams.length - 1]!;
      assert.ok(serverStream.inner instanceof TLSSocket);
      assert.match(serverStream.peerAddr, /^127\.0\.0\.1:\d+$/);
      assert.equal(stream.peerAddr, `127.0.0.1:${server.port}`);
      const info = await withTimeout(stream.close(4000, 'tls bye'), 5000, 'close');
      assert.equal(info.code, 4000);
      assert.deepEqual(await withTimeout(serverStream.closed, 5000, 'server closed'), { code: 4000, reason: 'tls bye', wasClean: true });
    }
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    assert.deepEqual(warnings.map((w) => String(w)), []);
  });

  test('our client refuses an untrusted certificate unless told not to check', async () => {
    const { server } = await wssEcho();
    await assert.rejects(withTimeout(connect(`${server.url}/`), 5000, 'untrusted'), (error: unknown) => {
      return error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE' && /certificate/i.test(error.message);
    });
    // The certificate does not name this host.
    await assert.rejects(
      withTimeout(connect(`${server.url}/`, { tls: { ca, servername: 'example.com' } }), 5000, 'wrong name'),
      (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_HANDSHAKE',
    );
    const insecure = await connect(`${server.url}/`, { tls: { rejectUnauthorized: false } });
    await insecure.send('ok anyway');
    assert.equal((await withTimeout(insecure.recv(), 5000, 'echo')).text(), 'ok anyway');
    await insecure.close();
  });

  test('ws client -> our handler on node:https with ca', async () => {
    const { server } = await wssEcho();
    const client = await WsClient.open(`wss://localhost:${server.port}/`, undefined, { ca });
    await client.send('ws over tls');
    await client.send(binaryPayload(200_000, 2), { binary: true });
    assert.equal((await client.next()).data.toString(), 'ws over tls');
    const echoed = await client.next();
    assert.equal(echoed.isBinary, true);
    assert.deepEqual(echoed.data, binaryPayload(200_000, 2));
    client.ws.close(4001, 'done');
    assert.equal((await withTimeout(client.closed, 5000, 'closed')).code, 4001);
  });

  test('our client -> ws server on node:https', async () => {
    const https: Server = createHttpsServer({ ...tlsFixture });
    const wss = new WebSocketServer({ server: https });
    const closes: number[] = [];
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer, isBinary) => ws.send(data, { binary: isBinary }));
      ws.on('close', (code) => closes.push(code));
    });
    https.listen(0, '127.0.0.1');
    await once(https, 'listening');
    cleanups.push(async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    });
    const port = (https.address() as AddressInfo).port;
    const stream = await connect(`wss://localhost:${port}/`, { tls: { ca } });
    assert.ok(stream.inner instanceof TLSSocket);
    const big = binaryPayload(1 << 20, 5);
    await stream.send('to ws over tls');
    await stream.send(big);
    await stream.sendFragment('frag', false);
    await stream.sendFragment('mented', true);
    assert.equal((await withTimeout(stream.recv(), 5000, 'text')).text(), 'to ws over tls');
    assert.deepEqual((await withTimeout(stream.recv(), 5000, 'binary')).bytes(), big);
    assert.equal((await withTimeout(stream.recv(), 5000, 'fragmented')).text(), 'fragmented');
    const info = await withTimeout(stream.close(1000), 5000, 'close');
    assert.equal(info.wasClean, true);
    await waitFor(() => closes.length === 1, 5000, 'ws close');
    assert.deepEqual(closes, [1000]);
  });
});
