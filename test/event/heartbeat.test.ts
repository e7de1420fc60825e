import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { AsyncWebSocketApp } from '../../src/event/app.js';
import { HeartbeatSweep, type HeartbeatMember } from '../../src/event/heartbeat.js';

async function until(predicate: () => boolean, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------------------------
// The sweep alone, with a hand-driven clock

interface Member extends HeartbeatMember {
  name: string;
}

function sweepOver(members: Member[], timeoutMs = 1000, intervalMs = 250) {
  const pinged: string[] = [];
  const expired: string[] = [];
  const sweep = new HeartbeatSweep<Member>({ intervalMs, timeoutMs }, () => members, {
    ping: (m) => pinged.push(m.name),
    expire: (m) => expired.push(m.name),
  });
  return { sweep, pinged, expired };
}

test('defaults are 5000 ms interval and 10000 ms timeout (as the original)', () => {
  const sweep = new HeartbeatSweep({}, () => [], { ping() {}, expire() {} });
  assert.equal(sweep.intervalMs, 5000);
  assert.equal(sweep.timeoutMs, 10000);
  assert.throws(() => new HeartbeatSweep({ intervalMs: 0 }, () => [], { ping() {}, expire() {} }), RangeError);
  assert.throws(() => new HeartbeatSweep({ timeoutMs: -1 }, () => [], { ping() {}, expire() {} }), RangeError);
});

test('silent members are pinged, then expired once silent for longer than the timeout', () => {
  const quiet: Member = { name: 'quiet', heartbeatSeen: false, heartbeatSince: 0 };
  const chatty: Member = { name: 'chatty', heartbeatSeen: false, heartbeatSince: 0 };
  const { sweep, pinged, expired } = sweepOver([quiet, chatty]);
  for (let now = 250; now <= 1000; now += 250) {
    chatty.heartbeatSeen = true;
    sweep.sweep(now);
  }
  assert.deepEqual(pinged, ['quiet', 'quiet', 'quiet', 'quiet'], 'only the silent one is pinged');
  assert.deepEqual(expired, [], 'silent for exactly the timeout is not yet expired');
  chatty.heartbeatSeen = true;
  sweep.sweep(1250);
  assert.deepEqual(expired, ['quiet']);
  assert.equal(chatty.heartbeatSince, 1250);
  assert.equal(chatty.heartbeatSeen, false, 'the sweep clears the flag');
});

test('activity restarts the silence from the sweep that saw it, never earlier', () => {
  const member: Member = { name: 'm', heartbeatSeen: false, heartbeatSince: 0 };
  const { sweep, expired } = sweepOver([member]);
  sweep.sweep(250);
  member.heartbeatSeen = true; // e.g. a pong at 300
  sweep.sweep(500);
  assert.equal(member.heartbeatSince, 500);
  sweep.sweep(1250);
  sweep.sweep(1500);
  assert.deepEqual(expired, []);
  sweep.sweep(1750);
  assert.deepEqual(expired, ['m']);
});

test('start/stop run one timer that does not keep the process alive', async () => {
  let sweeps = 0;
  const sweep = new HeartbeatSweep({ intervalMs: 10, timeoutMs: 100 }, () => {
    sweeps++;
    return [];
  }, { ping() {}, expire() {} });
  sweep.start();
  sweep.start();
  assert.equal(sweep.running, true);
  await until(() => sweeps >= 3, 'sweeps');
  sweep.stop();
  assert.equal(sweep.running, false);
  const after = sweeps;
  await sleep(50);
  assert.equal(sweeps, after);
});

// ---------------------------------------------------------------------------------------------
// Through real sockets

/** Frames (opcode, payload) a raw client reads from the server. */
function readFrames(socket: Socket, onFrame: (opcode: number, payload: Buffer) => void): void {
  let buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      let length = buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      }
      if (buffer.length < offset + length) return;
      onFrame(buffer[0]! & 0x0f, buffer.subarray(offset, offset + length));
      buffer = buffer.subarray(offset + length);
    }
  });
}

/** A raw client that completes the handshake; nothing is read until the caller attaches. */
async function rawClient(port: number): Promise<Socket> {
  const socket = netConnect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => undefined);
  socket.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  let head = '';
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      assert.match(head, /^HTTP\/1\.1 101/);
      resolve();
    };
    socket.on('data', onData);
  });
  return socket;
}

function maskedText(text: string): Buffer {
  const payload = Buffer.from(text);
  // A zero mask key leaves the payload as is (the mask bit is what the server checks).
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

const INTERVAL = 100;
const TIMEOUT = 300;

test('a client that stops answering is closed (1008) within interval + timeout; its disconnect runs once', async () => {
  const disconnects: { id: number; code: number | undefined; at: number }[] = [];
  const connectedAt = new Map<number, number>();
  const app = new AsyncWebSocketApp()
    .withHeartbeat({ intervalMs: INTERVAL, timeoutMs: TIMEOUT })
    .withConnectHandler((stream) => void connectedAt.set(stream.id, Date.now()))
    .withDisconnectHandler((stream) => void disconnects.push({ id: stream.id, code: stream.closeInfo?.code, at: Date.now() }));
  await app.run();
  try {
    // A well-behaved client: `ws` answers every ping with a pong.
    const healthy = new WebSocket(app.url);
    await once(healthy, 'open');
    let healthyPings = 0;
    healthy.on('ping', () => healthyPings++);

    // A silent client: it reads (and so sees the pings and the close frame) but never answers.
    const silent = await rawClient(app.address.port);
    const frames: { opcode: number; payload: Buffer }[] = [];
    readFrames(silent, (opcode, payload) => frames.push({ opcode, payload }));
    silent.resume();
    const silentClosed = once(silent, 'close');
    await until(() => connectedAt.size === 2, 'both connected');
    const silentId = Math.max(...connectedAt.keys());

    await until(() => disconnects.length === 1, 'the silent client is disconnected', 10000);
    await silentClosed;
    const [gone] = disconnects;
    assert.equal(gone!.id, silentId);
    // Closed after more than the timeout, within interval + timeout plus the short close wait
    // (one interval) and scheduling slack.
    const silentFor = gone!.at - connectedAt.get(silentId)!;
    assert.ok(silentFor > TIMEOUT, `closed after ${silentFor} ms`);
    assert.ok(silentFor < TIMEOUT + 2 * INTERVAL + 1500, `closed after ${silentFor} ms`);
    assert.ok(frames.filter((f) => f.opcode === 0x9).length >= 1, 'it was pinged');
    const close = frames.find((f) => f.opcode === 0x8);
    assert.ok(close, 'it was sent a close frame');
    assert.equal(close.payload.readUInt16BE(0), 1008);
    assert.equal(close.payload.subarray(2).toString(), 'heartbeat timeout');
    assert.equal(gone!.code, 1006, 'the close handshake never completed, so the socket was dropped');

    // The healthy client outlives several timeouts, and the disconnect ran only once.
    await sleep(3 * TIMEOUT);
    assert.equal(healthy.readyState, WebSocket.OPEN);
    assert.ok(healthyPings >= 1, 'the healthy client was pinged too');
    assert.equal(disconnects.length, 1);
    assert.equal(app.connectionCount, 1);
    healthy.close();
    await until(() => disconnects.length === 2, 'healthy disconnect');
  } finally {
    await app.close();
  }
});

test('a client that stopped reading altogether is dropped too', async () => {
  let disconnects = 0;
  const app = new AsyncWebSocketApp()
    .withHeartbeat({ intervalMs: INTERVAL, timeoutMs: TIMEOUT })
    .withDisconnectHandler(() => void disconnects++);
  await app.run();
  try {
    const stalled = await rawClient(app.address.port);
    await until(() => disconnects === 1, 'disconnect', 10000);
    await sleep(3 * INTERVAL);
    assert.equal(disconnects, 1);
    assert.equal(app.connectionCount, 0);
    stalled.destroy();
  } finally {
    await app.close();
  }
});

test('any frame counts as activity: a client that sends messages but never pongs stays', async () => {
  let messages = 0;
  let disconnects = 0;
  const app = new AsyncWebSocketApp()
    .withHeartbeat({ intervalMs: INTERVAL, timeoutMs: TIMEOUT })
    .withMessageHandler(() => void messages++)
    .withDisconnectHandler(() => void disconnects++);
  await app.run();
  try {
    const chatty = await rawClient(app.address.port);
    chatty.resume();
    const timer = setInterval(() => chatty.write(maskedText('still here')), INTERVAL / 2);
    await sleep(4 * TIMEOUT);
    clearInterval(timer);
    assert.equal(disconnects, 0);
    assert.ok(messages >= 10);
    // Once it stops, it goes.
    await until(() => disconnects === 1, 'disconnect after going quiet', 10000);
    chatty.destroy();
  } finally {
    await app.close();
  }
});
