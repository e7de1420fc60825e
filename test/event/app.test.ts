import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { AsyncWebSocketApp, type AsyncStream, type DeliveryReport } from '../../src/event/app.js';
import { InProcessBroker } from '../../src/broker/in-process.js';
import { Message } from '../../src/message.js';
import { rejectUpgrade } from '../../src/node/upgrade.js';

// ---------------------------------------------------------------------------------------------
// Helpers

/** Poll `predicate` until it holds; fail after `timeoutMs`. */
async function until(predicate: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A `ws` client, resolved once open; its received messages (as strings) are collected. */
async function client(url: string, options: WebSocket.ClientOptions = {}, protocols: string[] = []): Promise<WebSocket & { received: string[] }> {
  const ws = new WebSocket(url, protocols, options) as WebSocket & { received: string[] };
  ws.received = [];
  ws.on('message', (data, isBinary) => ws.received.push(isBinary ? `binary:${(data as Buffer).length}` : String(data)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => reject(new Error(`status ${response.statusCode}`)));
  });
  return ws;
}

/** The HTTP status a `ws` client gets when the upgrade is refused. */
function refusedStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => reject(new Error('unexpectedly accepted')));
    ws.once('unexpected-response', (request, response) => {
      resolve(response.statusCode ?? 0);
      request.destroy();
    });
    ws.once('error', () => undefined);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: '' });
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
}

interface Frame {
  opcode: number;
  payload: Buffer;
}

/** Incremental parser of the (unmasked) frames a server sends. */
class FrameReader {
  frames: Frame[] = [];
  bytes = 0;
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) return;
      this.frames.push({ opcode: b[0]! & 0x0f, payload: b.subarray(offset, offset + length) });
      this.buffer = b.subarray(offset + length);
    }
  }

  closeCode(): number | undefined {
    const frame = this.frames.find((f) => f.opcode === 0x8);
    return frame === undefined ? undefined : frame.payload.readUInt16BE(0);
  }
}

/** A masked frame as a client sends it. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([0x80 | opcode, 0x80 | length]) : Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]);
  const masked = Buffer.alloc(length);
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([header, mask, masked]);
}

function closeFrame(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return clientFrame(0x8, payload);
}

/**
 * A raw TCP client that completes the opening handshake. It then reads nothing (the socket is
 * paused) until `read()` is called, which feeds every byte into `reader`.
 */
async function rawClient(port: number, path = '/'): Promise<{ socket: Socket; reader: FrameReader; read(): void }> {
  const socket = netConnect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let head = Buffer.alloc(0);
  const reader = new FrameReader();
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      const status = head.subarray(0, end).toString().split('\r\n')[0]!;
      if (!status.startsWith('HTTP/1.1 101')) reject(new Error(`handshake refused: ${status}`));
      const rest = head.subarray(end + 4);
      if (rest.length > 0) reader.push(rest);
      resolve();
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  return {
    socket,
    reader,
    read() {
      socket.on('data', (chunk: Buffer) => reader.push(chunk));
      socket.resume();
    },
  };
}

function portOf(app: AsyncWebSocketApp<any, any>): number {
  return app.address.port;
}

// ---------------------------------------------------------------------------------------------
// Basics

test('echo with synchronous handlers; ids unique and increasing; app and stream state', async () => {
  const events: string[] = [];
  const app = new AsyncWebSocketApp({ greeting: 'hello' })
    .withStreamState((stream) => ({ count: 0, id: stream.id }))
    .withConnectHandler((stream, state) => {
      events.push(`connect ${stream.id}`);
      stream.send(`${state.greeting} ${stream.id}`);
    })
    .withMessageHandler((stream, message) => {
      stream.state.count++;
      const report = stream.send(message);
      assert.deepEqual(report, { queued: 1, skipped: 0 });
    })
    .withDisconnectHandler((stream) => events.push(`disconnect ${stream.id} after ${stream.state.count} (${stream.closeInfo?.code})`));
  await app.run();
  assert.match(app.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(app.address.host, '127.0.0.1');
  try {
    const a = await client(app.url);
    const b = await client(app.url);
    await until(() => a.received.length === 1 && b.received.length === 1, 'greetings');
    const idA = Number(a.received[0]!.split(' ')[1]);
    const idB = Number(b.received[0]!.split(' ')[1]);
    assert.ok(idA >= 1 && idB === idA + 1, `ids ${idA} ${idB}`);
    a.send('one');
    a.send(Buffer.from([1, 2, 3]));
    a.send('three');
    await until(() => a.received.length === 4, 'echoes');
    assert.deepEqual(a.received.slice(1), ['one', 'binary:3', 'three']);
    a.close(1000);
    await closed(a);
    await until(() => events.length === 3, 'disconnect');
    assert.deepEqual(events, [`connect ${idA}`, `connect ${idB}`, `disconnect ${idA} after 3 (1000)`]);
    assert.equal(app.connectionCount, 1);
    b.close();
    await closed(b);
  } finally {
    await app.close();
  }
});

test('a plain HTTP request to the app gets 426', async () => {
  const app = new AsyncWebSocketApp();
  await app.run('127.0.0.1:0');
  try {
    const response = await fetch(`http://127.0.0.1:${portOf(app)}/`);
    assert.equal(response.status, 426);
    assert.equal(response.headers.get('upgrade'), 'websocket');
    await response.text();
  } finally {
    await app.close();
  }
});

test('run() serves wss:// with withCert', async () => {
  const cert = new URL('../fixtures/tls/cert.pem', import.meta.url);
  const key = new URL('../fixtures/tls/key.pem', import.meta.url);
  const app = new AsyncWebSocketApp()
    .withCert(fileURLToPath(cert), fileURLToPath(key))
    .withMessageHandler((stream, message) => void stream.send(message));
  await app.run();
  try {
    assert.match(app.url, /^wss:\/\/127\.0\.0\.1:/);
    const ws = await client(`wss://localhost:${portOf(app)}`, { ca: readFileSync(cert) });
    ws.send('over tls');
    await until(() => ws.received.length === 1, 'echo');
    assert.deepEqual(ws.received, ['over tls']);
    ws.close();
  } finally {
    await app.close();
  }
});

test('the onConnect / onMessage / onDisconnect setters work like the with* methods', async () => {
  const app = new AsyncWebSocketApp().withAddress('127.0.0.1:0');
  let disconnects = 0;
  app.onConnect = (stream) => void stream.send('welcome');
  app.onMessage = (stream, message) => void stream.send(`got ${message.text()}`);
  app.onDisconnect = () => void disconnects++;
  await app.run();
  try {
    const ws = await client(app.url);
    ws.send('x');
    await until(() => ws.received.length === 2, 'replies');
    assert.deepEqual(ws.received, ['welcome', 'got x']);
    ws.close();
    await until(() => disconnects === 1, 'disconnect');
  } finally {
    await app.close();
  }
});

test('events stay in order per connection under load (60 clients, async handlers with random delays)', async () => {
  const CLIENTS = 60;
  const MESSAGES = 25;
  const logs = new Map<number, string[]>();
  const violations: string[] = [];
  const running = new Set<number>();
  const enter = (id: number, what: string): void => {
    if (running.has(id)) violations.push(`${what} on ${id} overlapped another handler`);
    running.add(id);
    logs.get(id)!.push(what);
  };
  const leave = (id: number): void => void running.delete(id);
  const delay = (): Promise<unknown> => sleep(Math.floor(Math.random() * 4));
  let disconnects = 0;

  const app = new AsyncWebSocketApp()
    .withConnectHandler(async (stream) => {
      logs.set(stream.id, []);
      enter(stream.id, 'connect');
      await delay();
      await delay();
      leave(stream.id);
    })
    .withMessageHandler((stream, message) => {
      const n = Number(message.text());
      enter(stream.id, `m${n}`);
      stream.send(message);
      // Mix synchronous and asynchronous handling on the same connection.
      if (n % 3 === 0) {
        leave(stream.id);
        return undefined;
      }
      return delay().then(() => leave(stream.id));
    })
    .withDisconnectHandler(async (stream) => {
      enter(stream.id, 'disconnect');
      await delay();
      leave(stream.id);
      disconnects++;
    });
  await app.run();
  try {
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => client(app.url)));
    // Every client sends its messages at once and closes right away: its messages arrive while
    // its async connect handler is still running, and its close while handlers are queued.
    for (const ws of clients) {
      for (let i = 0; i < MESSAGES; i++) ws.send(String(i));
      ws.close(1000);
    }
    await until(() => disconnects === CLIENTS, 'every disconnect handler', 20000);
    await sleep(50);
    assert.deepEqual(violations, []);
    assert.equal(logs.size, CLIENTS);
    const expected = ['connect', ...Array.from({ length: MESSAGES }, (_, i) => `m${i}`), 'disconnect'];
    for (const [id, log] of logs) assert.deepEqual(log, expected, `connection ${id}`);
    assert.equal(app.connectionCount, 0);
  } finally {
    await app.close();
  }
});

test('a client flooding a slow async handler is paused, not buffered without bound, and nothing is lost', async () => {
  const handled: number[] = [];
  let disconnected = false;
  const app = new AsyncWebSocketApp()
    .withOptions({ maxQueuedBytes: 1024 })
    .withMessageHandler(async (_stream, message) => {
      await sleep(1);
      handled.push(Number(message.text().split(' ')[0]));
    })
    .withDisconnectHandler(() => void (disconnected = true));
  await app.run();
  try {
    const ws = await client(app.url);
    const padding = 'p'.repeat(200);
    for (let i = 0; i < 300; i++) ws.send(`${i} ${padding}`);
    ws.close();
    await until(() => disconnected, 'disconnect after every message', 20000);
    assert.deepEqual(handled, Array.from({ length: 300 }, (_, i) => i));
  } finally {
    await app.close();
  }
});

test('a handler that throws or rejects is reported; the connection and the server keep working', async () => {
  const reported: { error: unknown; id: number | undefined }[] = [];
  const app = new AsyncWebSocketApp()
    .withErrorHandler((error, stream) => reported.push({ error, id: stream?.id }))
    .withConnectHandler(() => {
      throw new Error('connect failed');
    })
    .withMessageHandler(async (stream, message) => {
      const text = message.text();
      if (text === 'throw') throw new Error('sync-looking throw in async handler');
      if (text === 'reject') return Promise.reject(new Error('rejected'));
      stream.send(`ok ${text}`);
      return undefined;
    });
  await app.run();
  try {
    const ws = await client(app.url);
    ws.send('throw');
    ws.send('reject');
    ws.send('fine');
    await until(() => ws.received.length === 1, 'reply after errors');
    assert.deepEqual(ws.received, ['ok fine']);
    assert.deepEqual(
      reported.map((r) => (r.error as Error).message),
      ['connect failed', 'sync-looking throw in async handler', 'rejected'],
    );
    assert.ok(reported.every((r) => typeof r.id === 'number'));
    // Synchronous throws too.
    app.onMessage = () => {
      throw new Error('sync throw');
    };
    ws.send('again');
    await until(() => reported.length === 4, 'sync throw reported');
    const other = await client(app.url);
    other.close();
    ws.close();
    await closed(ws);
  } finally {
    await app.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Upgrade hooks

test('upgrade hooks: data seeds the stream state, rejections get their HTTP status, subprotocols', async () => {
  const app = new AsyncWebSocketApp()
    .withOptions({ allowedOrigins: ['https://good.example'], protocols: ['chat.v2', 'chat.v1'] })
    .withUpgradeHook((request) => {
      const token = request.headers.authorization;
      if (token === undefined) return rejectUpgrade(401, 'login first', { 'WWW-Authenticate': 'Bearer' });
      if (token !== 'Bearer sesame') return rejectUpgrade(403, 'forbidden');
      return { data: { user: 'ali' } };
    })
    .withConnectHandler((stream) => {
      const state = stream.state as { user: string };
      stream.send(`${state.user} ${stream.protocol}`);
    });
  await app.run();
  try {
    const origin = 'https://good.example';
    assert.equal(await refusedStatus(app.url, { origin }), 401);
    assert.equal(await refusedStatus(app.url, { origin, headers: { Authorization: 'Bearer wrong' } }), 403);
    assert.equal(await refusedStatus(app.url, { origin: 'https://evil.example', headers: { Authorization: 'Bearer sesame' } }), 403);
    const ws = await client(app.url, { origin, headers: { Authorization: 'Bearer sesame' } }, ['chat.v1']);
    await until(() => ws.received.length === 1, 'greeting');
    assert.deepEqual(ws.received, ['ali chat.v1']);
    assert.equal(ws.protocol, 'chat.v1');
    ws.close();
    await closed(ws);
    assert.equal(app.connectionCount <= 1, true);
  } finally {
    await app.close();
  }
});

test('the upgrade hook sees the parsed query on the app\'s own listener', async () => {
  const app = new AsyncWebSocketApp()
    .withUpgradeHook((request) => ({ data: `${request.query.get('room')}|${request.query.has('x')}` }))
    .withConnectHandler((stream) => stream.send(String(stream.state)));
  await app.run();
  try {
    const ws = await client(`${app.url}/chat?room=r%2F1&x`);
    await until(() => ws.received.length === 1, 'query');
    assert.deepEqual(ws.received, ['r/1|true']);
    ws.close();
  } finally {
    await app.close();
  }
});

test('the stream state factory receives the upgrade data; a failing factory closes with 1011', async () => {
  const reported: unknown[] = [];
  let connects = 0;
  const app = new AsyncWebSocketApp()
    .withErrorHandler((error) => reported.push(error))
    .withUpgradeHook((request) => ({ data: request.url }))
    .withStreamState((_stream, data) => {
      if (data === '/fail') throw new Error('no state for you');
      return { path: data as string, seen: 0 };
    })
    .withConnectHandler((stream) => {
      connects++;
      stream.send(stream.state.path);
    });
  await app.run();
  try {
    const ws = await client(`${app.url}/room/7`);
    await until(() => ws.received.length === 1, 'path');
    assert.deepEqual(ws.received, ['/room/7']);
    const bad = await client(`${app.url}/fail`);
    const { code } = await closed(bad);
    assert.equal(code, 1011);
    assert.equal(connects, 1);
    assert.equal(reported.length, 1);
    ws.close();
  } finally {
    await app.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Broadcast, topics, sender

test('broadcast reaches 1000 connections; every message is counted at every receiver', async () => {
  const CLIENTS = 1000;
  const MESSAGES = 20;
  const app = new AsyncWebSocketApp();
  await app.run();
  const clients: WebSocket[] = [];
  const counts = new Array<number>(CLIENTS).fill(0);
  const outOfOrder: number[] = [];
  try {
    for (let batch = 0; batch < CLIENTS; batch += 100) {
      const opened = await Promise.all(Array.from({ length: 100 }, () => client(app.url)));
      for (const ws of opened) {
        const index = clients.length;
        clients.push(ws);
        ws.on('message', (data) => {
          const text = String(data);
          if (text.startsWith('big')) return;
          if (text !== `message ${counts[index]}`) outOfOrder.push(index);
          counts[index]!++;
        });
      }
    }
    await until(() => app.connectionCount === CLIENTS, 'all connections registered');
    const sender = app.sender();
    const reports: DeliveryReport[] = [];
    for (let i = 0; i < MESSAGES; i++) reports.push(sender.broadcast(`message ${i}`));
    for (const report of reports) assert.deepEqual(report, { queued: CLIENTS, skipped: 0 });
    // A payload over the copy threshold, binary: one frame for everyone, intact at each end.
    const big = Buffer.concat([Buffer.from('big'), randomBytes(100 * 1024)]);
    const watched = [clients[0]!, clients[CLIENTS / 2]!, clients[CLIENTS - 1]!];
    const bigReceived = watched.map((ws) => new Promise<Buffer>((resolve) => ws.on('message', (data, isBinary) => isBinary && resolve(data as Buffer))));
    assert.deepEqual(sender.broadcast(Message.binary(big)), { queued: CLIENTS, skipped: 0 });
    await until(() => counts.every((count) => count === MESSAGES), 'every message at every receiver', 15000);
    assert.deepEqual(outOfOrder, []);
    for (const received of await Promise.all(bigReceived)) assert.ok(received.equals(big));
  } finally {
    for (const ws of clients) ws.terminate();
    await app.close();
  }
});

test('topics: subscribe, publish, unsubscribe, cleanup on disconnect', async () => {
  const app = new AsyncWebSocketApp().withMessageHandler((stream, message) => {
    const [command, topic, ...rest] = message.text().split(' ');
    if (command === 'sub') stream.send(`sub ${topic} ${stream.subscribe(topic!)}`);
    if (command === 'unsub') stream.send(`unsub ${topic} ${stream.unsubscribe(topic!)}`);
    if (command === 'pub') {
      const report = stream.publish(topic!, rest.join(' '));
      stream.send(`pub ${report.queued} ${report.skipped}`);
    }
    if (command === 'topics') stream.send(`topics ${stream.topics.sort().join(',')}`);
  });
  await app.run();
  try {
    const [a, b, c] = await Promise.all([client(app.url), client(app.url), client(app.url)]);
    a.send('sub news');
    b.send('sub news');
    b.send('sub sport');
    a.send('sub news');
    await until(() => a.received.length === 2 && b.received.length === 2, 'subscriptions');
    assert.deepEqual(a.received, ['sub news true', 'sub news false']);
    const sender = app.sender();
    assert.equal(sender.subscriberCount('news'), 2);

    // A stream's publish skips the publisher; the sender's reaches every subscriber.
    a.send('pub news hello');
    await until(() => a.received.length === 3 && b.received.length === 3, 'publish');
    assert.equal(a.received[2], 'pub 1 0');
    assert.equal(b.received[2], 'hello');
    assert.deepEqual(sender.publish('news', 'from outside'), { queued: 2, skipped: 0 });
    assert.deepEqual(sender.publish('nobody', 'into the void'), { queued: 0, skipped: 0 });
    await until(() => a.received.length === 4 && b.received.length === 4, 'sender publish');
    assert.equal(c.received.length, 0, 'c subscribed to nothing');

    b.send('unsub news');
    b.send('topics');
    await until(() => b.received.length === 6, 'unsubscribe');
    assert.deepEqual(b.received.slice(4), ['unsub news true', 'topics sport']);
    assert.equal(sender.subscriberCount('news'), 1);

    b.close();
    await closed(b);
    await until(() => sender.subscriberCount('sport') === 0, 'topics cleaned on disconnect');
    a.close();
    c.close();
  } finally {
    await app.close();
  }
});

test('an AsyncSender works from a timer, outside any event', async () => {
  const ids: number[] = [];
  const app = new AsyncWebSocketApp().withConnectHandler((stream) => void ids.push(stream.id));
  await app.run();
  const sender = app.sender();
  assert.equal(app.sender(), sender);
  try {
    const [a, b] = await Promise.all([client(app.url), client(app.url)]);
    await until(() => ids.length === 2, 'connections');
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
      sender.broadcast(`tick ${ticks}`);
      sender.send(ids[0]!, `private ${ticks}`);
      if (ticks === 5) clearInterval(timer);
    }, 10);
    await until(() => a.received.length === 10 && b.received.length === 5, 'ticks');
    assert.deepEqual(b.received, ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5']);
    assert.deepEqual(a.received.slice(0, 2), ['tick 1', 'private 1']);
    assert.deepEqual(sender.send(123456, 'nobody'), { queued: 0, skipped: 0 });
    assert.equal(sender.has(ids[0]!), true);
    assert.equal(sender.connectionCount, 2);
    a.close();
    b.close();
    await Promise.all([closed(a), closed(b)]);
    await until(() => sender.connectionCount === 0, 'disconnects');
    assert.deepEqual(sender.send(ids[0]!, 'gone'), { queued: 0, skipped: 0 });
  } finally {
    await app.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Backpressure

const LIMIT = 256 * 1024;
const CHUNK = 60 * 1024;

test("backpressure 'drop': a client that stops reading is skipped, memory stays bounded, others get everything", async () => {
  const streams = new Map<number, AsyncStream>();
  const app = new AsyncWebSocketApp()
    .withOptions({ maxBufferedAmount: LIMIT, backpressure: 'drop' })
    .withConnectHandler((stream) => void streams.set(stream.id, stream));
  await app.run();
  try {
    const stalled = await rawClient(portOf(app));
    await until(() => streams.size === 1, 'stalled client registered');
    const [stalledId] = [...streams.keys()];
    const stalledStream = streams.get(stalledId!)!;
    const reader = await client(app.url);
    let readerBytes = 0;
    reader.on('message', (data) => void (readerBytes += (data as Buffer).length));
    await until(() => streams.size === 2, 'reader registered');
    const sender = app.sender();

    // Send 180 MiB of distinct buffers (so queued ones could not share memory) to the stalled
    // client, and broadcast alongside; never yield more than a turn between sends.
    let queuedToStalled = 0;
    let skippedForStalled = 0;
    let broadcastSkipped = 0;
    let broadcasts = 0;
    let maxBuffered = 0;
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 3200; i++) {
      const report = sender.send(stalledId!, Buffer.alloc(CHUNK, i & 0xff));
      queuedToStalled += report.queued;
      skippedForStalled += report.skipped;
      assert.equal(report.queued + report.skipped, 1);
      if (i % 32 === 0) {
        const b = sender.broadcast(Buffer.alloc(CHUNK, 1));
        broadcasts++;
        assert.equal(b.queued + b.skipped, 2);
        broadcastSkipped += b.skipped;
      }
      maxBuffered = Math.max(maxBuffered, stalledStream.bufferedAmount);
      await nextTurn();
    }
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    assert.ok(skippedForStalled > 0, 'some sends to the stalled client were skipped');
    assert.ok(broadcastSkipped > 0, 'the stalled client was skipped by broadcasts too');
    assert.ok(maxBuffered <= LIMIT + CHUNK + 64, `buffered ${maxBuffered} stays near the limit`);
    assert.ok(queuedToStalled * CHUNK < 40 * 1024 * 1024, `only ${queuedToStalled} chunks were queued (kernel buffers + limit)`);
    assert.ok(rssGrowth < 96 * 1024 * 1024, `rss grew by ${rssGrowth} bytes after sending 180 MiB`);
    // The reading client got every broadcast.
    await until(() => readerBytes === broadcasts * CHUNK, 'reader got every broadcast');
    assert.equal(stalledStream.readyState, 'open', "'drop' does not close");
    reader.close();
    stalled.socket.destroy();
  } finally {
    await app.close();
  }
});

test("backpressure 'close': the stalled client is closed with 1008 and its disconnect runs once", async () => {
  const streams: AsyncStream[] = [];
  const disconnects: { id: number; code: number | undefined }[] = [];
  const app = new AsyncWebSocketApp()
    .withOptions({ maxBufferedAmount: LIMIT, backpressure: 'close' })
    .withConnectHandler((stream) => void streams.push(stream))
    .withDisconnectHandler((stream) => void disconnects.push({ id: stream.id, code: stream.closeInfo?.code }));
  await app.run();
  try {
    const stalled = await rawClient(portOf(app));
    await until(() => streams.length === 1, 'registered');
    const stream = streams[0]!;
    const sender = app.sender();
    let sent = 0;
    let skipped = 0;
    while (skipped === 0 && sent < 2000) {
      const report = sender.send(stream.id, Buffer.alloc(CHUNK, 7));
      skipped += report.skipped;
      sent++;
      await nextTurn();
    }
    assert.equal(skipped, 1, 'the send over the limit was skipped');
    assert.equal(stream.readyState, 'closing');
    // Nothing more is queued for a closing connection; it counts as skipped.
    assert.deepEqual(stream.send('late'), { queued: 0, skipped: 1 });
    assert.deepEqual(sender.broadcast('late'), { queued: 0, skipped: 1 });
    // The client now reads: it gets the queued data, then close 1008, and answers it.
    stalled.read();
    await until(() => stalled.reader.closeCode() !== undefined, 'the close frame', 15000);
    assert.equal(stalled.reader.closeCode(), 1008);
    const dataFrames = stalled.reader.frames.filter((f) => f.opcode === 0x2);
    assert.equal(dataFrames.length, sent - 1, 'every queued message arrived before the close frame');
    stalled.socket.write(closeFrame(1008));
    await until(() => disconnects.length === 1, 'disconnect');
    await sleep(50);
    assert.deepEqual(disconnects, [{ id: stream.id, code: 1008 }]);
  } finally {
    await app.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Shutdown

test('close(): messages in flight arrive, then close 1001; disconnects run; new connections are refused', async () => {
  let disconnects = 0;
  const app = new AsyncWebSocketApp().withDisconnectHandler(async () => {
    await sleep(5);
    disconnects++;
  });
  await app.run();
  const url = app.url;
  const clients = await Promise.all(Array.from({ length: 5 }, () => client(url)));
  await until(() => app.connectionCount === 5, 'connections');
  const sender = app.sender();
  const closes = clients.map((ws) => closed(ws));
  for (let i = 0; i < 300; i++) assert.deepEqual(sender.broadcast(`message ${i} ${'x'.repeat(200)}`), { queued: 5, skipped: 0 });
  await app.close();
  // close() resolved after every disconnect handler finished.
  assert.equal(disconnects, 5);
  for (const [i, ws] of clients.entries()) {
    const { code } = await closes[i]!;
    assert.equal(code, 1001);
    assert.equal(ws.received.length, 300);
    assert.equal(ws.received[299]!.startsWith('message 299 '), true);
  }
  await assert.rejects(client(url));
  assert.equal(app.running, false);
});

test('close() is bounded: a client that never answers the close frame is destroyed', async () => {
  let disconnects = 0;
  const app = new AsyncWebSocketApp()
    .withOptions({ shutdownTimeoutMs: 300 })
    .withDisconnectHandler(() => void disconnects++);
  await app.run();
  const silent = await rawClient(portOf(app));
  // It reads, but never answers.
  silent.read();
  await until(() => app.connectionCount === 1, 'registered');
  const socketClosed = once(silent.socket, 'close');
  await app.close();
  assert.equal(disconnects, 1);
  await socketClosed;
  assert.equal(silent.reader.closeCode(), 1001);
});

test('an AbortSignal (run option or withShutdown) shuts the app down with 1001', async () => {
  for (const how of ['run', 'withShutdown'] as const) {
    const controller = new AbortController();
    let disconnects = 0;
    const app = new AsyncWebSocketApp().withDisconnectHandler(() => void disconnects++);
    if (how === 'withShutdown') {
      app.withShutdown(controller.signal);
      await app.run();
    } else {
      await app.run({ signal: controller.signal });
    }
    const ws = await client(app.url);
    await until(() => app.connectionCount === 1, 'registered');
    ws.on('message', () => undefined);
    app.sender().broadcast('before shutdown');
    controller.abort();
    const { code } = await closed(ws);
    assert.equal(code, 1001, how);
    assert.deepEqual(ws.received, ['before shutdown']);
    await until(() => disconnects === 1 && !app.running, 'shut down');
    await app.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Broker

test('an in-process broker carries broadcasts and publishes between apps', async () => {
  const broker = new InProcessBroker();
  const one = new AsyncWebSocketApp().withBroker(broker).withMessageHandler((stream, message) => {
    const text = message.text();
    if (text.startsWith('sub ')) stream.send(`ok ${stream.subscribe(text.slice(4))}`);
  });
  const two = new AsyncWebSocketApp(undefined, { broker });
  await Promise.all([one.run(), two.run()]);
  try {
    assert.equal(broker.size, 2);
    const a = await client(one.url);
    const b = await client(two.url);
    await until(() => one.connectionCount === 1 && two.connectionCount === 1, 'connections');
    a.send('sub room');
    await until(() => a.received.length === 1, 'subscribed');
    // Reports count local connections only.
    assert.deepEqual(two.sender().broadcast('hello all'), { queued: 1, skipped: 0 });
    assert.deepEqual(two.sender().publish('room', 'hello room'), { queued: 0, skipped: 0 });
    await until(() => a.received.length === 3 && b.received.length === 1, 'relayed');
    assert.deepEqual(a.received, ['ok true', 'hello all', 'hello room']);
    assert.deepEqual(b.received, ['hello all']);
    a.close();
    b.close();
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
  assert.equal(broker.size, 0);
});

test('an unlinked app cannot run its own server', async () => {
  const app = AsyncWebSocketApp.unlinked();
  await assert.rejects(app.run(), /unlinked/);
  assert.throws(() => app.address);
});

test('the event app sends every byte form, refuses bad payloads and Blobs with a typed error, and keeps the connection', async () => {
  const outcomes: string[] = [];
  const app = new AsyncWebSocketApp().withMessageHandler((stream, message, _state) => {
    if (message.text() !== 'go') return;
    const backing = new ArrayBuffer(4);
    new Uint8Array(backing).set([1, 2, 3, 4]);
    stream.send(backing);
    stream.send(new DataView(backing, 2, 2));
    stream.send(new Uint16Array(backing, 0, 1));
    stream.broadcast(new SharedArrayBuffer(2));
    for (const bad of [7, {}, null, new Blob(['x'])]) {
      try {
        stream.send(bad as never);
        outcomes.push('sent');
      } catch (error) {
        outcomes.push((error as { code?: string }).code ?? 'untyped');
      }
      try {
        stream.broadcast(bad as never);
        outcomes.push('sent');
      } catch (error) {
        outcomes.push((error as { code?: string }).code ?? 'untyped');
      }
    }
    stream.send('end');
  });
  await app.run();
  try {
    const ws = await client(app.url);
    const bytes: number[][] = [];
    ws.on('message', (data, isBinary) => {
      if (isBinary) bytes.push([...(data as Buffer)]);
    });
    ws.send('go');
    await until(() => ws.received.includes('end'), 'end');
    assert.deepEqual(bytes, [[1, 2, 3, 4], [3, 4], [1, 2], [0, 0]]);
    assert.deepEqual(outcomes, Array(8).fill('WS_ERR_INVALID_ARGUMENT'));
    ws.close();
  } finally {
    await app.close();
  }
});
