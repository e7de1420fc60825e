// WebSocketStream on real socket pairs: a plain node:http server with a websocketHandler route
// on one side and our `connect` (or a raw TCP client) on the other. Also the Message class.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { connect } from '../../src/stream/client.js';
import { Message } from '../../src/message.js';
import { WebSocketError } from '../../src/protocol/errors.js';
import { encodeFrame, Opcode } from '../../src/protocol/frame.js';
import type { CloseInfo, WebSocketStream } from '../../src/stream/stream.js';
import type { WebSocketHandler, WebSocketHandlerOptions } from '../../src/stream/handler.js';
import {
  binaryPayload,
  isSettled,
  sleep,
  startServer,
  upgradeRequest,
  waitFor,
  withTimeout,
  WsClient,
  type TestServer,
} from '../helpers/server.js';

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function serve(handler: WebSocketHandler, options: WebSocketHandlerOptions = {}): Promise<TestServer> {
  const server = await startServer(handler, options);
  servers.push(server as TestServer);
  return server;
}

/** A server whose handler hands its stream out, plus a promise for that stream. */
async function serveCapture(
  body: (stream: WebSocketStream) => Promise<void> = (stream) => stream.closed.then(() => undefined),
  options: WebSocketHandlerOptions = {},
): Promise<{ server: TestServer; next: () => Promise<WebSocketStream> }> {
  const arrived: WebSocketStream[] = [];
  const waiters: ((s: WebSocketStream) => void)[] = [];
  const server = await serve(async (stream) => {
    const waiter = waiters.shift();
    if (waiter) waiter(stream);
    else arrived.push(stream);
    await body(stream);
  }, options);
  return {
    server,
    next: () => {
      const stream = arrived.shift();
      if (stream) return Promise.resolve(stream);
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), 5000, 'server stream');
    },
  };
}

const echo: WebSocketHandler = async (stream) => {
  for await (const message of stream) await stream.send(message);
};

function isClosedError(error: unknown): boolean {
  return error instanceof WebSocketError && error.code === 'WS_ERR_CLOSED';
}

describe('WebSocketStream: receiving', () => {
  test('recv() resolves with each message, text and binary, byte-exact and in order', async () => {
    const server = await serve(echo);
    const client = await connect(`${server.url}/echo`);
    const bin = binaryPayload(300);
    await client.send('héllo 😀');
    await client.send(bin);
    await client.send(Message.text('third'));
    const first = await withTimeout(client.recv(), 5000, 'recv 1');
    assert.equal(first.isText, true);
    assert.equal(first.text(), 'héllo 😀');
    assert.deepEqual(first.bytes(), Buffer.from('héllo 😀'));
    const second = await withTimeout(client.recv(), 5000, 'recv 2');
    assert.equal(second.isText, false);
    assert.deepEqual(second.bytes(), bin);
    const third = await withTimeout(client.recv(), 5000, 'recv 3');
    assert.equal(third.isText, true);
    assert.equal(third.text(), 'third');
    await client.close();
  });

  test('a second recv() while one is waiting gets the same promise; the message is delivered once', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const pending = client.recv();
    const again = client.recv();
    assert.equal(again, pending);
    const serverStream = await next();
    await serverStream.send('late');
    await serverStream.send('later');
    assert.equal((await withTimeout(pending, 5000, 'pending recv')).text(), 'late');
    assert.equal((await withTimeout(again, 5000, 'same recv')).text(), 'late');
    assert.equal((await withTimeout(client.recv(), 5000, 'next recv')).text(), 'later');
    await client.close();
  });

  test('recv() pending when the peer closes rejects with WS_ERR_CLOSED carrying the close code', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const pending = assert.rejects(withTimeout(client.recv(), 5000, 'pending recv'), (error: unknown) => {
      assert.ok(isClosedError(error));
      assert.equal((error as WebSocketError).closeCode, 4321);
      return true;
    });
    const serverStream = await next();
    await serverStream.close(4321, 'done here');
    await pending;
    await assert.rejects(client.recv(), isClosedError);
  });

  test('tryRecv() returns undefined before anything arrives, then the message, then throws WS_ERR_CLOSED after close', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    assert.equal(client.tryRecv(), undefined);
    const serverStream = await next();
    assert.equal(client.tryRecv(), undefined);
    await serverStream.send('one');
    await serverStream.send(Buffer.from([1, 2, 3]));
    let got: Message | undefined;
    await waitFor(() => (got = client.tryRecv()) !== undefined, 5000, 'first message via tryRecv');
    assert.equal(got!.isText, true);
    assert.equal(got!.text(), 'one');
    await waitFor(() => (got = client.tryRecv()) !== undefined, 5000, 'second message via tryRecv');
    assert.equal(got!.isText, false);
    assert.deepEqual(got!.bytes(), Buffer.from([1, 2, 3]));
    assert.equal(client.tryRecv(), undefined);

    await serverStream.close(1000);
    await withTimeout(client.closed, 5000, 'client closed');
    assert.throws(() => client.tryRecv(), (error: unknown) => isClosedError(error) && (error as WebSocketError).closeCode === 1000);
  });

  test('messages received before a close are still delivered by tryRecv() and recv(), then WS_ERR_CLOSED', async () => {
    const server = await serve(async (stream) => {
      await stream.send('a');
      await stream.send('b');
      // returning closes with 1000
    });
    const client = await connect(`${server.url}/`);
    const info = await withTimeout(client.closed, 5000, 'client closed');
    assert.equal(info.code, 1000);
    assert.equal(client.tryRecv()?.text(), 'a');
    assert.equal((await client.recv()).text(), 'b');
    assert.throws(() => client.tryRecv(), isClosedError);
    await assert.rejects(client.recv(), isClosedError);
  });

  test('for await ends after a clean close (server side and client side)', async () => {
    let serverSaw: string[] | null = null;
    let serverLoopEnded = false;
    const server = await serve(async (stream) => {
      const seen: string[] = [];
      for await (const message of stream) seen.push(message.text());
      serverLoopEnded = true;
      serverSaw = seen;
    });
    // Client closes: the server's loop ends.
    const client = await connect(`${server.url}/`);
    for (const text of ['x', 'y', 'z']) await client.send(text);
    await client.close(1000);
    await waitFor(() => serverLoopEnded, 5000, 'server loop to end');
    assert.deepEqual(serverSaw, ['x', 'y', 'z']);

    // Server closes: the client's loop ends.
    const server2 = await serve(async (stream) => {
      for (let i = 0; i < 5; i++) await stream.send(`m${i}`);
    });
    const client2 = await connect(`${server2.url}/`);
    const received: string[] = [];
    await withTimeout(
      (async () => {
        for await (const message of client2) received.push(message.text());
      })(),
      5000,
      'client for-await',
    );
    assert.deepEqual(received, ['m0', 'm1', 'm2', 'm3', 'm4']);
    assert.equal((await client2.closed).code, 1000);
  });

  test('for await throws after the connection is lost (no close frame)', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    serverStream.terminate();
    await assert.rejects(
      withTimeout(
        (async () => {
          for await (const _ of client) {
            /* nothing arrives */
          }
        })(),
        5000,
        'for-await',
      ),
      (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_CONNECTION_LOST',
    );
    const info = await client.closed;
    assert.equal(info.code, 1006);
    assert.equal(info.wasClean, false);
  });
});

describe('WebSocketStream: sending', () => {
  test('send() resolves for strings, bytes and Messages; the peer gets the right kinds', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    const sends = [
      client.send('text'),
      client.send(new Uint8Array([0xff, 0x00])),
      client.send(Message.binary('bin')),
      client.send(Message.new(Buffer.from('valid utf8'))),
    ];
    for (const send of sends) assert.equal(await withTimeout(send, 5000, 'send'), undefined);
    const kinds: [boolean, string][] = [];
    for (let i = 0; i < 4; i++) {
      const message = await withTimeout(serverStream.recv(), 5000, 'server recv');
      kinds.push([message.isText, message.bytes().toString('hex')]);
    }
    assert.deepEqual(kinds, [
      [true, Buffer.from('text').toString('hex')],
      [false, 'ff00'],
      [false, Buffer.from('bin').toString('hex')],
      [true, Buffer.from('valid utf8').toString('hex')],
    ]);
    await client.close();
  });

  test('one Message sent to many connections (framed once after its first send) arrives whole at each', async () => {
    const { server, next } = await serveCapture();
    const clients = await Promise.all(Array.from({ length: 4 }, () => connect(`${server.url}/`)));
    const streams: WebSocketStream[] = [];
    for (let i = 0; i < clients.length; i++) streams.push(await next());
    const messages = [Message.text('hello é'), Message.binary(binaryPayload(70000)), Message.binary(new Uint8Array(0))];
    for (const message of messages) for (const stream of streams) await withTimeout(stream.send(message), 5000, 'send');
    // A client sending the same Message several times still masks each frame itself.
    const echo = Message.text('from the client');
    await clients[0]!.send(echo);
    await clients[0]!.send(echo);
    for (const client of clients) {
      for (const message of messages) {
        const got = await withTimeout(client.recv(), 5000, 'client recv');
        assert.equal(got.isText, message.isText);
        assert.ok(got.bytes().equals(message.bytes()));
      }
    }
    for (let i = 0; i < 2; i++) assert.equal((await withTimeout(streams[0]!.recv(), 5000, 'server recv')).text(), 'from the client');
    await Promise.all(clients.map((client) => client.close()));
  });

  test('large messages (they arrive in pieces) echo back whole, text and binary', async () => {
    const server = await serve(async (stream) => {
      for await (const message of stream) await stream.send(message);
    });
    const client = await connect(`${server.url}/`);
    const big = binaryPayload(3 * 1024 * 1024 + 7);
    const text = 'é€😀x'.repeat(60000);
    await client.send(big);
    await client.send(text);
    const first = await withTimeout(client.recv(), 10000, 'binary echo');
    assert.equal(first.isText, false);
    assert.ok(first.bytes().equals(big));
    const second = await withTimeout(client.recv(), 10000, 'text echo');
    assert.equal(second.text(), text);
    await client.close();
  });

  test('send() after close rejects with WS_ERR_CLOSED, on both sides', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    const closing = client.close(1000, 'bye');
    // Closing (close frame sent, reply not yet in): sending already fails.
    await assert.rejects(client.send('too late'), isClosedError);
    await withTimeout(closing, 5000, 'client close');
    await assert.rejects(client.send('too late'), isClosedError);
    await assert.rejects(client.sendFragment('x', true), isClosedError);
    await assert.rejects(client.ping(), isClosedError);
    await withTimeout(serverStream.closed, 5000, 'server closed');
    await assert.rejects(serverStream.send('too late'), isClosedError);
    await assert.rejects(serverStream.send(Buffer.alloc(10)), isClosedError);
    // An un-awaited failing send must not become an unhandled rejection.
    void serverStream.send('ignored');
    await sleep(10);
  });

  test('sendFragment() streams one message in pieces; other sends wait their turn', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    await client.sendFragment('he', false);
    await client.sendFragment('llo', false);
    await assert.rejects(client.send('interleaved'), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
    await client.sendFragment(' world', true);
    await client.sendFragment(Buffer.from([1, 2]), false);
    await client.sendFragment(Buffer.from([3]), true);
    const text = await withTimeout(serverStream.recv(), 5000, 'text');
    assert.equal(text.isText, true);
    assert.equal(text.text(), 'hello world');
    const bin = await withTimeout(serverStream.recv(), 5000, 'binary');
    assert.equal(bin.isText, false);
    assert.deepEqual(bin.bytes(), Buffer.from([1, 2, 3]));
    await client.close();
  });

  test('ping() is answered with a pong carrying the same payload', async () => {
    // Our server pings a ws client: the ws client sees the ping and answers.
    const pinged = await serveCapture();
    const wsClient = await WsClient.open(`${pinged.server.url}/`);
    const serverStream = await pinged.next();
    const serverBytes: Buffer[] = [];
    // Copy before the parser sees the bytes (it unmasks in place).
    serverStream.inner.prependListener('data', (chunk: Buffer) => serverBytes.push(Buffer.from(chunk)));
    const wsSawPing = once(wsClient.ws, 'ping');
    await serverStream.ping('are you there');
    const [payload] = (await withTimeout(wsSawPing, 5000, 'ws ping event')) as [Buffer];
    assert.equal(payload.toString(), 'are you there');
    // The pong comes back masked: opcode 0xA, FIN, mask bit, length 13.
    await waitFor(() => Buffer.concat(serverBytes).length >= 2 + 4 + 13, 5000, 'pong bytes at the server');
    const pong = Buffer.concat(serverBytes);
    assert.equal(pong[0], 0x8a);
    assert.equal(pong[1], 0x80 | 13);
    const unmasked = Buffer.from(pong.subarray(6, 19).map((b, i) => b ^ pong[2 + (i % 4)]!));
    assert.equal(unmasked.toString(), 'are you there');
    wsClient.ws.close();

    // Our client pings our server: the server's pong arrives unmasked on the client's socket.
    const server = await serve(echo);
    const client = await connect(`${server.url}/`);
    const clientBytes: Buffer[] = [];
    client.inner.on('data', (chunk: Buffer) => clientBytes.push(chunk));
    await client.ping(Buffer.from([9, 8, 7]));
    await waitFor(() => Buffer.concat(clientBytes).length >= 5, 5000, 'pong bytes at the client');
    assert.deepEqual(Buffer.concat(clientBytes).subarray(0, 5), Buffer.from([0x8a, 0x03, 9, 8, 7]));
    // A ping payload over 125 bytes is refused locally.
    await assert.rejects(client.ping(Buffer.alloc(126)), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
    // The connection still works after the pings.
    await client.send('still here');
    assert.equal((await withTimeout(client.recv(), 5000, 'echo')).text(), 'still here');
    await client.close();
  });
});

describe('WebSocketStream: closing', () => {
  test('close(code, reason) resolves with CloseInfo; the peer sees the code and reason; closed settles on both sides', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    const info: CloseInfo = await withTimeout(serverStream.close(4001, 'going away ✓'), 5000, 'server close');
    // The close code received back from the peer (our client echoes the code).
    assert.equal(info.code, 4001);
    assert.equal(info.wasClean, true);
    assert.equal(info.error, undefined);
    assert.deepEqual(await serverStream.closed, info);
    assert.equal(serverStream.readyState, 'closed');

    const clientInfo = await withTimeout(client.closed, 5000, 'client closed');
    assert.deepEqual(clientInfo, { code: 4001, reason: 'going away ✓', wasClean: true });
    assert.equal(client.readyState, 'closed');
    // close() again is harmless and resolves with the same info.
    assert.deepEqual(await client.close(), clientInfo);
  });

  test('a client close() is seen by the server with its code and reason', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    const info = await withTimeout(client.close(3000, 'client says bye'), 5000, 'client close');
    assert.equal(info.code, 3000);
    assert.equal(info.wasClean, true);
    const serverInfo = await withTimeout(serverStream.closed, 5000, 'server closed');
    assert.deepEqual(serverInfo, { code: 3000, reason: 'client says bye', wasClean: true });
  });

  test('close() with no arguments sends 1000; invalid codes and long reasons are refused', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000]) {
      await assert.rejects(client.close(code), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_CLOSE_CODE', `code ${code}`);
    }
    await assert.rejects(client.close(1000, 'x'.repeat(124)), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_ARGUMENT');
    assert.equal(client.readyState, 'open');
    await withTimeout(client.close(), 5000, 'close');
    assert.deepEqual(await withTimeout(serverStream.closed, 5000, 'server closed'), { code: 1000, reason: '', wasClean: true });
  });

  test('a peer that drops TCP gives closed = 1006, wasClean false, with WS_ERR_CONNECTION_LOST', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    client.inner.destroy();
    const info = await withTimeout(serverStream.closed, 5000, 'server closed');
    assert.equal(info.code, 1006);
    assert.equal(info.wasClean, false);
    assert.equal(info.error?.code, 'WS_ERR_CONNECTION_LOST');
  });
});

describe('WebSocketStream: properties', () => {
  test('peerAddr is 127.0.0.1:PORT on both sides and inner is the net.Socket', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    assert.ok(client.inner instanceof Socket);
    assert.ok(serverStream.inner instanceof Socket);
    assert.equal(client.peerAddr, `127.0.0.1:${server.port}`);
    assert.equal(serverStream.peerAddr, `127.0.0.1:${client.inner.localPort}`);
    assert.match(serverStream.peerAddr, /^127\.0\.0\.1:\d+$/);
    // The server's inner socket is the one the http server upgraded.
    assert.ok([...server.sockets].includes(serverStream.inner));
    assert.equal(serverStream.inner.remotePort, client.inner.localPort);
    assert.equal(serverStream.request?.url, '/');
    assert.equal(client.request, undefined);
    assert.equal(client.readyState, 'open');
    assert.equal(client.bufferedAmount, 0);
    await client.close();
  });

  test('peerAddr brackets IPv6 hosts', async (t) => {
    let server: TestServer;
    try {
      server = await startServer(async (stream) => {
        await stream.send(stream.peerAddr);
      }, {}, { host: '::1' });
    } catch {
      t.skip('no IPv6 loopback');
      return;
    }
    servers.push(server);
    const client = await connect(`${server.url}/`);
    assert.equal(client.peerAddr, `[::1]:${server.port}`);
    assert.equal((await withTimeout(client.recv(), 5000, 'peerAddr')).text(), `[::1]:${client.inner.localPort}`);
    await client.closed;
  });
});

describe('WebSocketStream: toDuplex()', () => {
  test('pipeline(Readable of chunks, duplex, collector) round-trips the bytes through an echo server', async () => {
    const server = await serve(echo);
    const client = await connect(`${server.url}/`);
    const duplex = client.toDuplex();
    const chunks = Array.from({ length: 50 }, (_, i) => binaryPayload(1000 + i * 97, i + 1));
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const collected: Buffer[] = [];
    let collectedBytes = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (const chunk of chunks) yield chunk;
      // Ending the duplex closes the WebSocket: wait until every echo is back first.
      await waitFor(() => collectedBytes >= total, 5000, 'all echoes');
    }
    await withTimeout(
      pipeline(
        Readable.from(source()),
        duplex,
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            collected.push(chunk);
            collectedBytes += chunk.length;
            callback();
          },
        }),
      ),
      10_000,
      'pipeline',
    );
    assert.deepEqual(Buffer.concat(collected), Buffer.concat(chunks));
    const info = await client.closed;
    assert.equal(info.code, 1000);
    assert.equal(info.wasClean, true);
  });

  test('the readable side yields each message and ends when the peer closes; writes arrive as binary messages', async () => {
    const got: Message[] = [];
    const server = await serve(async (stream) => {
      for (let i = 0; i < 3; i++) got.push(await stream.recv());
      await stream.send('text comes out as bytes');
      await stream.send(Buffer.from([0, 1, 2]));
    });
    const client = await connect(`${server.url}/`);
    const duplex = client.toDuplex();
    duplex.write('written string');
    duplex.write(Buffer.from([0xde, 0xad]));
    duplex.write(Buffer.from('third'));
    const read: Buffer[] = [];
    await withTimeout(
      (async () => {
        for await (const chunk of duplex) read.push(chunk as Buffer);
      })(),
      5000,
      'duplex read side',
    );
    assert.deepEqual(read, [Buffer.from('text comes out as bytes'), Buffer.from([0, 1, 2])]);
    assert.deepEqual(
      got.map((m) => [m.isText, m.bytes().toString('hex')]),
      [
        [false, Buffer.from('written string').toString('hex')],
        [false, 'dead'],
        [false, Buffer.from('third').toString('hex')],
      ],
    );
    assert.equal((await client.closed).code, 1000);
  });
});

describe('WebSocketStream: toDuplex() failures', () => {
  test('a connection lost without a close frame errors the duplex (pipeline rejects), not a clean end', async () => {
    const { server, next } = await serveCapture();
    const client = await connect(`${server.url}/`);
    const serverStream = await next();
    const duplex = client.toDuplex();
    const collected: Buffer[] = [];
    const piping = pipeline(
      duplex,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          collected.push(chunk);
          callback();
        },
      }),
    );
    await serverStream.send('before the crash');
    await waitFor(() => collected.length === 1, 5000, 'first chunk');
    serverStream.terminate();
    await assert.rejects(withTimeout(piping, 5000, 'pipeline'), (error: unknown) => {
      return error instanceof WebSocketError && error.code === 'WS_ERR_CONNECTION_LOST';
    });
    assert.deepEqual(collected, [Buffer.from('before the crash')]);
  });

  test('a clean close from the peer ends the duplex without an error', async () => {
    const server = await serve(async (stream) => {
      await stream.send('only message');
    });
    const client = await connect(`${server.url}/`);
    const chunks: Buffer[] = [];
    await withTimeout(
      pipeline(
        client.toDuplex(),
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            chunks.push(chunk);
            callback();
          },
        }),
      ),
      5000,
      'pipeline',
    );
    assert.deepEqual(chunks, [Buffer.from('only message')]);
  });
});

describe('WebSocketStream: backpressure', () => {
  test('a handler that does not read makes the server stop reading; recv() resumes it', async () => {
    const maxQueuedBytes = 1024 * 1024;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let serverStream!: WebSocketStream;
    let receivedBytes = 0;
    let receivedCount = 0;
    let lastMessage: Buffer | undefined;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const messageSize = 64 * 1024;
    const count = 320; // 20 MiB
    const server = await serve(
      async (stream) => {
        serverStream = stream;
        await released;
        for (let i = 0; i < count; i++) {
          const message = await stream.recv();
          receivedBytes += message.byteLength;
          receivedCount++;
          lastMessage = message.bytes();
        }
        done();
      },
      { maxQueuedBytes },
    );
    const client = await connect(`${server.url}/`);
    const last = binaryPayload(messageSize, 77);
    const sends: Promise<void>[] = [];
    let resolvedSends = 0;
    for (let i = 0; i < count; i++) {
      const send = client.send(i === count - 1 ? last : binaryPayload(messageSize, i % 7));
      send.then(() => resolvedSends++);
      sends.push(send);
    }
    await waitFor(() => serverStream !== undefined && serverStream.inner.isPaused(), 5000, 'server socket paused');
    // Let the transfer settle: the server must not keep reading.
    await sleep(300);
    const readWhilePaused = serverStream.inner.bytesRead;
    await sleep(300);
    assert.equal(serverStream.inner.bytesRead, readWhilePaused, 'the server kept reading while paused');
    assert.ok(serverStream.inner.isPaused());
    // What was read is bounded near maxQueuedBytes (plus one socket read and a frame), far below 20 MiB.
    assert.ok(readWhilePaused <= maxQueuedBytes + 256 * 1024, `server read ${readWhilePaused} bytes while its handler was not reading`);
    assert.ok(readWhilePaused >= maxQueuedBytes, `server read only ${readWhilePaused} bytes`);
    // The client is therefore held up too: its later sends have not resolved.
    assert.ok(resolvedSends < count, 'every client send resolved although the server was not reading');
    assert.ok(client.bufferedAmount > 64 * 1024);

    release();
    await withTimeout(finished, 15_000, 'server to receive everything');
    await withTimeout(Promise.all(sends), 5000, 'client sends');
    assert.equal(receivedCount, count);
    assert.equal(receivedBytes, count * messageSize);
    assert.deepEqual(lastMessage, last);
    assert.equal(serverStream.inner.isPaused(), false);
    await client.close();
  });

  test('send() of a frame just over the high-water mark resolves once it is written (any high-water mark)', async () => {
    // A frame that leaves in one synchronous write never makes the socket emit 'drain'.
    for (const highWaterMark of [64 * 1024, 1024, 0]) {
      const server = await serve(echo, { highWaterMark });
      const client = await connect(`${server.url}/`, { highWaterMark });
      for (const size of [highWaterMark + 1, 65535 - 8, 65535, 65536, 100_000]) {
        const payload = binaryPayload(size, size);
        await withTimeout(client.send(payload), 5000, `client send of ${size} bytes (highWaterMark ${highWaterMark})`);
        const echoed = await withTimeout(client.recv(), 5000, `echo of ${size} bytes (highWaterMark ${highWaterMark})`);
        assert.ok(echoed.bytes().equals(payload));
        await withTimeout(client.sendFragment(payload, true), 5000, `sendFragment of ${size} bytes`);
        assert.ok((await withTimeout(client.recv(), 5000, 'fragment echo')).bytes().equals(payload));
      }
      await client.close();
    }
  });

  test('send() stops resolving over the high-water mark while the client does not read, and resumes when it does', async () => {
    const highWaterMark = 64 * 1024;
    const messageSize = 64 * 1024;
    // Send until a send blocks (once the kernel buffers on loopback are full), then a few more.
    const maxCount = 4096; // 256 MiB
    let count = 0;
    let resolvedSends = 0;
    let firstBlockedAt = -1;
    let serverStream!: WebSocketStream;
    let allSent!: () => void;
    const sentAll = new Promise<void>((resolve) => (allSent = resolve));
    const server = await serve(
      async (stream) => {
        serverStream = stream;
        const payload = binaryPayload(messageSize, 3);
        for (let i = 0; i < maxCount; i++) {
          const send = stream.send(payload);
          if (firstBlockedAt === -1 && !(await isSettled(send))) firstBlockedAt = i;
          await send;
          resolvedSends++;
          if (firstBlockedAt !== -1 && i >= firstBlockedAt + 16) break;
        }
        count = resolvedSends;
        allSent();
        await stream.closed;
      },
      { highWaterMark },
    );
    // A raw client that completes the handshake and then does not read.
    const socket = netConnect(server.port, '127.0.0.1');
    socket.write(upgradeRequest('/'));
    let head = Buffer.alloc(0);
    await withTimeout(
      new Promise<void>((resolve) => {
        const onData = (chunk: Buffer): void => {
          head = Buffer.concat([head, chunk]);
          if (head.includes('\r\n\r\n')) {
            socket.off('data', onData);
            socket.pause();
            resolve();
          }
        };
        socket.on('data', onData);
      }),
      5000,
      'handshake',
    );
    assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 /);
    await waitFor(() => firstBlockedAt !== -1, 10_000, 'a send to block');
    await sleep(300);
    const stalledAt = resolvedSends;
    await sleep(300);
    assert.equal(resolvedSends, stalledAt, 'sends kept resolving while the client was not reading');
    assert.equal(stalledAt, firstBlockedAt);
    assert.ok(serverStream.bufferedAmount > highWaterMark, `bufferedAmount ${serverStream.bufferedAmount}`);

    // The client reads: every send resolves and every byte arrives.
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await withTimeout(sentAll, 15_000, 'all sends to resolve');
    assert.equal(count, firstBlockedAt + 17);
    const frameBytes = count * (messageSize + 10); // 2-byte header + 8-byte extended length
    const alreadyInHead = head.length - (head.indexOf('\r\n\r\n') + 4);
    await waitFor(() => received + alreadyInHead >= frameBytes, 10_000, 'all bytes at the client');
    assert.equal(received + alreadyInHead, frameBytes);
    socket.destroy();
  });
});

describe('Message', () => {
  test('Message.new(bytes) is text exactly when the bytes are valid UTF-8', () => {
    assert.equal(Message.new(Buffer.from('plain ascii')).isText, true);
    assert.equal(Message.new(Buffer.from('ünïcödé 😀')).isText, true);
    assert.equal(Message.new(new Uint8Array(0)).isText, true);
    assert.equal(Message.new(Buffer.from([0xff])).isText, false);
    assert.equal(Message.new(Buffer.from([0xc3])).isText, false); // truncated sequence
    assert.equal(Message.new(Buffer.from([0xed, 0xa0, 0x80])).isText, false); // surrogate
    assert.equal(Message.new(Buffer.from([0xc0, 0x80])).isText, false); // overlong
    assert.equal(Message.new('a string').isText, true);
    const view = new Uint8Array([0xff, 0x68, 0x69, 0xff]).subarray(1, 3);
    const fromView = Message.new(view);
    assert.equal(fromView.isText, true);
    assert.equal(fromView.text(), 'hi');
    assert.deepEqual(fromView.bytes(), Buffer.from('hi'));
  });

  test('Message.text and Message.binary', () => {
    const text = Message.text('héllo');
    assert.equal(text.isText, true);
    assert.equal(text.text(), 'héllo');
    assert.deepEqual(text.bytes(), Buffer.from('héllo', 'utf8'));
    assert.equal(text.byteLength, 6);
    assert.equal(Message.text(Buffer.from('ok')).text(), 'ok');
    assert.throws(() => Message.text(Buffer.from([0x80])), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_UTF8');

    const bin = Message.binary(Buffer.from([1, 2, 3]));
    assert.equal(bin.isText, false);
    assert.deepEqual(bin.bytes(), Buffer.from([1, 2, 3]));
    assert.equal(bin.byteLength, 3);
    // Binary from valid UTF-8 is still binary, and .text() decodes it.
    const utf8Binary = Message.binary(Buffer.from('décodé'));
    assert.equal(utf8Binary.isText, false);
    assert.equal(utf8Binary.text(), 'décodé');
    assert.equal(Message.binary('str').isText, false);
    assert.deepEqual(Message.binary('str').bytes(), Buffer.from('str'));
  });

  test('.text() of invalid binary throws WS_ERR_INVALID_UTF8; .bytes() of text is its UTF-8', () => {
    const invalid = Message.binary(Buffer.from([0x61, 0xff, 0x62]));
    assert.throws(() => invalid.text(), (error: unknown) => error instanceof WebSocketError && error.code === 'WS_ERR_INVALID_UTF8');
    assert.equal(String(invalid), '[binary message of 3 bytes]');
    const text = Message.text('€ and 😀');
    assert.deepEqual(text.bytes(), Buffer.from([0xe2, 0x82, 0xac, 0x20, 0x61, 0x6e, 0x64, 0x20, 0xf0, 0x9f, 0x98, 0x80]));
    assert.equal(text.byteLength, 12);
    assert.equal(String(text), '€ and 😀');
  });

  test('a message received in pieces joins them only when its bytes are asked for', () => {
    const parts = [Buffer.from('hé'), Buffer.from([0x6c]), Buffer.from('lo')];
    const message = Message.fromReceivedParts(parts, true);
    assert.equal(message.byteLength, 6);
    assert.equal(message.unjoinedParts(), parts);
    assert.equal(message.text(), 'héllo');
    assert.equal(message.unjoinedParts(), undefined);
    assert.ok(message.bytes().equals(Buffer.from('héllo')));
    assert.equal(message.byteLength, 6);
    const binary = Message.fromReceivedParts([Buffer.from([1, 2]), Buffer.from([3])], false);
    assert.equal(String(binary), '[binary message of 3 bytes]');
    assert.deepEqual([...binary.bytes()], [1, 2, 3]);
  });

  test('frameForServer: null on the first send, then one frame kept for every later send', () => {
    for (const message of [Message.text('héllo'), Message.binary(binaryPayload(20000)), Message.binary(Buffer.alloc(0))]) {
      assert.equal(message.frameForServer(), null);
      const frame = message.frameForServer();
      assert.ok(frame !== null);
      assert.ok(frame.bytes.equals(Buffer.concat(encodeFrame(message.isText ? Opcode.Text : Opcode.Binary, message.bytes()))));
      assert.equal(message.frameForServer(), frame);
    }
  });
});
