// permessage-deflate on a protocol Connection: bytes in, events out (RFC 7692 sections 6 and 7.2).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { Connection, type Role } from '../../../src/protocol/connection.js';
import type { DeflateAgreement } from '../../../src/protocol/deflate/negotiate.js';
import { cframe, decodeFrames, frame, hex, OP, toHex } from '../helpers.js';

const HELLO = hex('f2 48 cd c9 c9 07 00'); // RFC 7692 section 7.2.3.1

function agreement(overrides: Partial<DeflateAgreement> = {}): DeflateAgreement {
  return {
    sendWindowBits: 15, sendNoContextTakeover: false, receiveWindowBits: 15, receiveNoContextTakeover: false,
    threshold: 16, memLevel: 8, level: -1, concurrency: 10, ...overrides,
  };
}

type Event = { type: string; data?: string; text?: boolean; code?: number; error?: string | undefined };

function deflating(role: Role, options: { deflate?: DeflateAgreement | null; maxMessageSize?: number } = {}) {
  const events: Event[] = [];
  const written: Buffer[] = [];
  let closed: () => void = () => {};
  const closedPromise = new Promise<void>((resolve) => (closed = resolve));
  const conn = new Connection({
    write: (data) => {
      written.push(Buffer.from(data));
      events.push({ type: 'write', data: toHex(data) });
    },
    onMessage: (payload, isText) => events.push({ type: 'message', text: isText, data: payload.toString() }),
    onMessageParts: (parts, _length, isText) => events.push({ type: 'message', text: isText, data: Buffer.concat(parts).toString() }),
    onPing: (payload) => events.push({ type: 'ping', data: payload.toString() }),
    onClose: (code, _reason, error) => {
      events.push({ type: 'close', code, error: error?.code });
      closed();
    },
    closeTransport: () => events.push({ type: 'closeTransport' }),
  }, { role, deflate: options.deflate === undefined ? agreement() : options.deflate, maxMessageSize: options.maxMessageSize });
  const receive = (...chunks: Uint8Array[]) => conn.receive(Buffer.concat(chunks.map((chunk) => Buffer.from(chunk))));
  return { conn, events, written, receive, closed: closedPromise };
}

/** Resolves once `predicate` holds, checking on every turn (zlib runs on the thread pool). */
async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const messages = (events: Event[]) => events.filter((event) => event.type === 'message').map((event) => event.data);
const closeOf = (events: Event[]) => events.find((event) => event.type === 'close');

/** The close code of the close frame among the writes, if any. */
function closeFrameCode(written: Buffer[]): number | undefined {
  for (const f of decodeFrames(Buffer.concat(written))) if (f.opcode === OP.CLOSE) return f.payload.readUInt16BE(0);
  return undefined;
}

describe('receiving compressed messages', () => {
  test('RSV1 on a text frame: the RFC "Hello" is inflated and delivered', async () => {
    const { events, receive } = deflating('server');
    receive(cframe({ opcode: OP.TEXT, rsv1: true, payload: HELLO }));
    await until(() => messages(events).length === 1, 'the message');
    assert.deepEqual(events, [{ type: 'message', text: true, data: 'Hello' }]);
  });

  test('a client inflates unmasked frames from the server; context takeover across messages', async () => {
    const { events, receive } = deflating('client');
    receive(frame({ opcode: OP.TEXT, rsv1: true, payload: HELLO }), frame({ opcode: OP.TEXT, rsv1: true, payload: hex('f2 00 11 00 00') }));
    await until(() => messages(events).length === 2, 'two messages');
    assert.deepEqual(messages(events), ['Hello', 'Hello']);
  });

  test('fragmented: RSV1 on the first frame only, pieces split anywhere', async () => {
    const { events, receive } = deflating('server');
    const payload = deflateRawSync(Buffer.from('fragmented '.repeat(100)), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const all = Buffer.concat([
      cframe({ opcode: OP.TEXT, rsv1: true, fin: false, payload: payload.subarray(0, 5) }),
      cframe({ opcode: OP.CONT, fin: false, payload: Buffer.alloc(0) }),
      cframe({ opcode: OP.PING, payload: 'p' }),
      cframe({ opcode: OP.CONT, payload: payload.subarray(5) }),
    ]);
    for (let i = 0; i < all.length; i += 3) receive(all.subarray(i, i + 3));
    await until(() => messages(events).length === 1, 'the message');
    assert.deepEqual(messages(events), ['fragmented '.repeat(100)]);
  });

  test('several compressed messages in one chunk, context takeover: each inflated once, in order', async () => {
    const { events, receive } = deflating('server');
    const sender = new Connection({ write: (data) => chunks.push(Buffer.from(data)), onMessage: () => {}, onClose: () => {}, closeTransport: () => {} }, { role: 'client', deflate: agreement({ threshold: 0 }) });
    const chunks: Buffer[] = [];
    const texts = [0, 1, 2, 3].map((i) => `{"message":${i},"items":["alpha","beta","gamma","delta"]}`.repeat(50));
    for (const text of texts) sender.send(Buffer.from(text), true);
    await until(() => chunks.length === 4, 'four frames');
    receive(...chunks);
    await until(() => messages(events).length === 4, 'four messages');
    assert.deepEqual(messages(events), texts);
  });

  test('uncompressed messages still work beside compressed ones', async () => {
    const { events, receive } = deflating('server');
    receive(cframe({ opcode: OP.BINARY, payload: 'plain' }), cframe({ opcode: OP.TEXT, rsv1: true, payload: HELLO }), cframe({ opcode: OP.TEXT, payload: 'after' }));
    await until(() => messages(events).length === 3, 'three messages');
    assert.deepEqual(messages(events), ['plain', 'Hello', 'after']);
  });

  test('order: nothing overtakes a message that is inflating, not a later message nor the close', async () => {
    const { events, receive, closed } = deflating('server', { maxMessageSize: 1 << 24 });
    const big = deflateRawSync(Buffer.alloc(4 << 20, 'a'), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    receive(
      cframe({ opcode: OP.TEXT, rsv1: true, payload: big }),
      cframe({ opcode: OP.TEXT, payload: 'second' }),
      cframe({ opcode: OP.CLOSE, payload: hex('03 e8') }),
    );
    await closed;
    const kinds = events.filter((event) => event.type === 'message' || event.type === 'close').map((event) => event.type === 'close' ? 'close' : event.data!.length);
    assert.deepEqual(kinds, [4 << 20, 6, 'close']);
  });

  const protocolErrors: [string, Buffer[]][] = [
    ['RSV1 on a continuation frame', [cframe({ opcode: OP.TEXT, rsv1: true, fin: false, payload: HELLO.subarray(0, 3) }), cframe({ opcode: OP.CONT, rsv1: true, payload: HELLO.subarray(3) })]],
    ['RSV1 on a continuation of an uncompressed message', [cframe({ opcode: OP.TEXT, fin: false, payload: 'a' }), cframe({ opcode: OP.CONT, rsv1: true, payload: HELLO })]],
    ['RSV1 on a ping', [cframe({ opcode: OP.PING, rsv1: true, payload: 'x' })]],
    ['RSV1 on a close', [cframe({ opcode: OP.CLOSE, rsv1: true, payload: hex('03 e8') })]],
    ['RSV2 with the extension', [cframe({ opcode: OP.TEXT, rsv2: true, payload: 'x' })]],
    ['RSV3 with the extension', [cframe({ opcode: OP.TEXT, rsv3: true, payload: 'x' })]],
  ];
  for (const [name, frames] of protocolErrors) {
    test(`${name}: 1002`, async () => {
      const { events, written, receive, closed } = deflating('server');
      receive(...frames);
      await closed;
      assert.equal(closeOf(events)!.code, 1002);
      assert.equal(closeOf(events)!.error, 'WS_ERR_UNEXPECTED_RSV');
      assert.equal(closeFrameCode(written), 1002);
    });
  }

  test('RSV1 without the extension: 1002', async () => {
    const { events, receive, closed } = deflating('server', { deflate: null });
    receive(cframe({ opcode: OP.TEXT, rsv1: true, payload: HELLO }));
    await closed;
    assert.equal(closeOf(events)!.code, 1002);
  });

  test('a compression bomb closes with 1009', async () => {
    const { events, written, receive, closed } = deflating('server', { maxMessageSize: 1 << 20 });
    const bomb = deflateRawSync(Buffer.alloc(64 << 20), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    receive(cframe({ opcode: OP.BINARY, rsv1: true, payload: bomb }), cframe({ opcode: OP.TEXT, payload: 'never' }));
    await closed;
    assert.deepEqual(messages(events), []);
    assert.equal(closeOf(events)!.error, 'WS_ERR_MESSAGE_TOO_BIG');
    assert.equal(closeFrameCode(written), 1009);
  });

  test('compressed text that inflates to invalid UTF-8 closes with 1007', async () => {
    const { events, written, receive, closed } = deflating('server');
    const payload = deflateRawSync(Buffer.from([0x61, 0xff, 0x62]), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    receive(cframe({ opcode: OP.TEXT, rsv1: true, payload }));
    await closed;
    assert.equal(closeOf(events)!.error, 'WS_ERR_INVALID_UTF8');
    assert.equal(closeFrameCode(written), 1007);
  });

  test('garbage in a compressed frame closes with 1007', async () => {
    const { events, written, receive, closed } = deflating('server');
    receive(cframe({ opcode: OP.BINARY, rsv1: true, payload: hex('ff ff ff ff') }));
    await closed;
    assert.equal(closeOf(events)!.error, 'WS_ERR_COMPRESSION');
    assert.equal(closeFrameCode(written), 1007);
  });

  test('input behind an inflating message past HELD_INPUT_LIMIT asks the owner to stop reading', async () => {
    const held: boolean[] = [];
    const conn = new Connection({
      write: () => {}, onMessage: () => {}, onClose: () => {}, closeTransport: () => {},
      holdInput: (value) => held.push(value),
    }, { role: 'server', deflate: agreement(), maxMessageSize: 1 << 24 });
    const big = deflateRawSync(Buffer.alloc(8 << 20, 'b'), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    conn.receive(cframe({ opcode: OP.BINARY, rsv1: true, payload: big }));
    conn.receive(cframe({ opcode: OP.BINARY, payload: Buffer.alloc(300 * 1024) }));
    assert.deepEqual(held, [true]);
    await until(() => held.length === 2, 'reading to restart');
    assert.deepEqual(held, [true, false]);
  });
});

describe('sending compressed messages', () => {
  function frames(written: Buffer[]) {
    const all = Buffer.concat(written);
    const rsv1: boolean[] = [];
    let offset = 0;
    for (const f of decodeFrames(all)) {
      rsv1.push((all[offset]! & 0x40) !== 0);
      const length = f.payload.length;
      offset += (length < 126 ? 2 : length < 65536 ? 4 : 10) + (f.masked ? 4 : 0) + length;
    }
    return decodeFrames(all).map((f, i) => ({ ...f, rsv1: rsv1[i]! }));
  }
  const inflate = (payload: Buffer) => inflateRawSync(Buffer.concat([payload, hex('00 00 ff ff')]), { finishFlush: constants.Z_SYNC_FLUSH }).toString();

  test('at or above the threshold with RSV1, below it as it is, in send order', async () => {
    const { conn, written } = deflating('server');
    conn.send(Buffer.from('x'.repeat(16)), true);
    conn.send(Buffer.from('short'), true);
    conn.ping(Buffer.from('p'));
    conn.send(Buffer.from('y'.repeat(100)), false);
    conn.close(1000);
    await until(() => frames(written).length === 5, 'five frames');
    const sent = frames(written);
    // The ping is not held behind the compression; everything else keeps its order.
    assert.deepEqual(sent.map((f) => [f.opcode, f.rsv1]), [[OP.PING, false], [OP.TEXT, true], [OP.TEXT, false], [OP.BINARY, true], [OP.CLOSE, false]]);
    assert.equal(inflate(sent[1]!.payload), 'x'.repeat(16));
    assert.equal(sent[2]!.payload.toString(), 'short');
    assert.equal(inflate(sent[3]!.payload), 'y'.repeat(100));
  });

  test('a client masks its compressed frames; pieces are compressed as one message', async () => {
    const { conn, written } = deflating('client');
    conn.sendParts([Buffer.from('Hel'), Buffer.from('lo, world, hello')], true);
    await until(() => written.length > 0, 'a frame');
    const [sent] = frames(written);
    assert.equal(sent!.masked, true);
    assert.equal(sent!.rsv1, true);
    assert.equal(inflate(sent!.payload), 'Hello, world, hello');
  });

  test('context takeover: the second identical message is much smaller', async () => {
    const { conn, written } = deflating('server');
    const text = JSON.stringify({ user: 'someone', items: [1, 2, 3, 4, 5, 6, 7, 8] });
    conn.send(Buffer.from(text), true);
    conn.send(Buffer.from(text), true);
    await until(() => frames(written).length === 2, 'two frames');
    const [first, second] = frames(written);
    assert.ok(second!.payload.length < first!.payload.length / 2);
    // The peer's single decompressor, in order, reads both.
    const receiver = deflating('client');
    receiver.receive(...written);
    await until(() => messages(receiver.events).length === 2, 'both messages');
    assert.deepEqual(messages(receiver.events), [text, text]);
  });

  test('fragments are sent uncompressed, after a compression in progress', async () => {
    const { conn, written } = deflating('server');
    conn.send(Buffer.alloc(1000, 'z'), false);
    conn.sendFragment(Buffer.from('a'), true, false);
    conn.sendFragment(Buffer.from('b'), true, true);
    await until(() => frames(written).length === 3, 'three frames');
    assert.deepEqual(frames(written).map((f) => [f.opcode, f.rsv1, f.fin]), [[OP.BINARY, true, true], [OP.TEXT, false, false], [OP.CONT, false, true]]);
  });

  test('a window of 0 (the peer allowed only 8 bits) never compresses', () => {
    const { conn, written } = deflating('client', { deflate: agreement({ sendWindowBits: 0 }) });
    conn.send(Buffer.alloc(5000), false);
    assert.equal(frames(written)[0]!.rsv1, false);
  });

  test('the peer closing while a message is compressed: the message, then the close reply', async () => {
    const { conn, written, receive, closed } = deflating('server');
    conn.send(Buffer.alloc(200_000, 'q'), true);
    assert.equal(conn.pendingOutputBytes, 200_000);
    receive(cframe({ opcode: OP.CLOSE, payload: hex('03 e8') }));
    await closed;
    await until(() => frames(written).length === 2, 'two frames');
    assert.deepEqual(frames(written).map((f) => f.opcode), [OP.TEXT, OP.CLOSE]);
    assert.equal(conn.pendingOutputBytes, 0);
  });

  test('the transport lost mid-compression: nothing more is written', async () => {
    const { conn, written } = deflating('server');
    conn.send(Buffer.alloc(100_000, 'q'), true);
    conn.transportClosed();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(written.length, 0);
  });
});
