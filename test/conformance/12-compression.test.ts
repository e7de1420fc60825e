// permessage-deflate (RFC 7692), black-box, modelled on the Autobahn test suite's 12.x
// (compressed messages of many kinds and sizes) and 13.x (each offer of parameters): a client
// written here from the RFC, on node:zlib and raw TCP, offers the extension, checks the answer
// against its offer, sends compressed messages and checks that every echo decompresses to what
// was sent with the agreed window and context takeover. Runs against `humphrey-ws echo
// --deflate` in both modes (or the CONFORMANCE_TARGET's server with compression on).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { useTarget, opts, pseudoRandomBytes, utf8Text, BIG_TEST_MS } from './harness.js';
import { targetName, type Target } from './target.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** What the server agreed, as the client reads it. */
interface Agreed {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

interface Offer {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  /** `true`: the parameter without a value. */
  clientMaxWindowBits?: number | true;
}

function offerText(offer: Offer): string {
  let text = 'permessage-deflate';
  if (offer.serverNoContextTakeover) text += '; server_no_context_takeover';
  if (offer.clientNoContextTakeover) text += '; client_no_context_takeover';
  if (offer.serverMaxWindowBits !== undefined) text += `; server_max_window_bits=${offer.serverMaxWindowBits}`;
  if (offer.clientMaxWindowBits === true) text += '; client_max_window_bits';
  else if (offer.clientMaxWindowBits !== undefined) text += `; client_max_window_bits=${offer.clientMaxWindowBits}`;
  return text;
}

/**
 * Check the server's answer to one of `offers` (RFC 7692 section 7): one permessage-deflate
 * element, known parameters once each with valid values, windows no larger than offered, and
 * client_max_window_bits only when offered. Returns the agreement; throws what is wrong.
 */
function checkAnswer(answer: string, offers: Offer[]): Agreed {
  const elements = answer.split(',').map((element) => element.trim()).filter(Boolean);
  assert.equal(elements.length, 1, `one extension expected in ${JSON.stringify(answer)}`);
  const [name, ...params] = elements[0]!.split(';').map((part) => part.trim());
  assert.equal(name!.toLowerCase(), 'permessage-deflate');
  const agreed: Agreed = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  const seen = new Set<string>();
  let clientBits: number | undefined;
  let serverBits: number | undefined;
  for (const param of params) {
    const [key, rawValue] = param.split('=').map((part) => part.trim());
    const value = rawValue?.replace(/^"(.*)"$/, '$1');
    assert.ok(!seen.has(key!), `parameter ${key} repeated`);
    seen.add(key!);
    if (key === 'server_no_context_takeover' || key === 'client_no_context_takeover') {
      assert.equal(value, undefined, `${key} takes no value`);
      if (key === 'server_no_context_takeover') agreed.serverNoContextTakeover = true;
      else agreed.clientNoContextTakeover = true;
    } else if (key === 'server_max_window_bits' || key === 'client_max_window_bits') {
      assert.match(value ?? '', /^(8|9|1[0-5])$/, `${key} needs a value 8-15`);
      if (key === 'server_max_window_bits') serverBits = Number(value);
      else clientBits = Number(value);
    } else {
      assert.fail(`unknown parameter ${key} in the answer`);
    }
  }
  // The answer must fit one of the offers.
  const fits = offers.some((offer) => {
    if (clientBits !== undefined) {
      if (offer.clientMaxWindowBits === undefined) return false;
      if (offer.clientMaxWindowBits !== true && clientBits > offer.clientMaxWindowBits) return false;
    }
    if (offer.serverMaxWindowBits !== undefined && (serverBits === undefined || serverBits > offer.serverMaxWindowBits)) return false;
    if (offer.serverNoContextTakeover && !agreed.serverNoContextTakeover) return false;
    return true;
  });
  assert.ok(fits, `answer ${JSON.stringify(answer)} fits none of the offers ${JSON.stringify(offers.map(offerText))}`);
  if (serverBits !== undefined) agreed.serverMaxWindowBits = serverBits;
  const offeredClientBits = offers.find((offer) => typeof offer.clientMaxWindowBits === 'number')?.clientMaxWindowBits as number | undefined;
  agreed.clientMaxWindowBits = clientBits ?? offeredClientBits ?? 15;
  return agreed;
}

interface Received {
  opcode: number;
  compressed: boolean;
  payload: Buffer;
}

/** A WebSocket client speaking permessage-deflate, from the RFC (no library code). */
class DeflateClient {
  private buffer: Buffer = Buffer.alloc(0);
  private messages: Received[] = [];
  private waiters: ((message: Received | Error) => void)[] = [];
  private fragments: { opcode: number; compressed: boolean; parts: Buffer[] } | null = null;
  private failure: Error | null = null;
  private deflater: DeflateRaw | null = null;
  private inflater: InflateRaw | null = null;

  private constructor(private readonly socket: net.Socket, readonly agreed: Agreed | null, readonly answer: string | undefined) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.fail(new Error('connection closed')));
    socket.on('error', (error) => this.fail(error));
  }

  static async open(target: Target, extensions: string | null, offers: Offer[]): Promise<DeflateClient> {
    const socket = net.connect(target.port, target.host);
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET / HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions === null ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) + '\r\n',
    );
    let head = Buffer.alloc(0);
    const rest = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no handshake response')), 5000);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(head.subarray(end + 4));
        head = head.subarray(0, end);
      };
      socket.on('data', onData);
    });
    const lines = head.toString('latin1').split('\r\n');
    assert.match(lines[0]!, /^HTTP\/1\.1 101 /);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${line.slice(colon + 1).trim()}` : line.slice(colon + 1).trim());
    }
    assert.equal(headers.get('sec-websocket-accept'), createHash('sha1').update(key + GUID).digest('base64'));
    const answer = headers.get('sec-websocket-extensions');
    const agreed = answer === undefined ? null : checkAnswer(answer, offers);
    const client = new DeflateClient(socket, agreed, answer);
    if (rest.length > 0) client.onData(rest);
    return client;
  }

  /** Send one message, compressed when `compress` (split into frames of `fragmentSize`). */
  async send(payload: Buffer, isText: boolean, compress: boolean, fragmentSize = Infinity): Promise<void> {
    let data = payload;
    if (compress) {
      const agreed = this.agreed!;
      const deflater = (this.deflater ??= createDeflateRaw({ windowBits: Math.max(agreed.clientMaxWindowBits, 9) }));
      data = await flushThrough(deflater, [payload], constants.Z_SYNC_FLUSH);
      assert.deepEqual(data.subarray(-4), TRAILER);
      data = data.subarray(0, -4);
      if (agreed.clientNoContextTakeover) {
        deflater.close();
        this.deflater = null;
      }
    }
    const frames: Buffer[] = [];
    let offset = 0;
    do {
      const piece = data.subarray(offset, Math.min(data.length, offset + fragmentSize));
      offset += piece.length;
      const fin = offset >= data.length;
      const opcode = frames.length === 0 ? (isText ? 0x1 : 0x2) : 0x0;
      frames.push(encode(opcode, piece, fin, compress && frames.length === 0));
    } while (offset < data.length);
    this.socket.write(Buffer.concat(frames));
  }

  /** The next message from the server, decompressed as agreed. */
  async receive(ms = 20_000): Promise<{ opcode: number; payload: Buffer; compressed: boolean }> {
    const message = await this.next(ms);
    if (!message.compressed) return message;
    const agreed = this.agreed;
    assert.ok(agreed !== null, 'RSV1 set although no extension was agreed');
    // A decompressor limited to the agreed server window, fresh for every message when the
    // server agreed no context takeover: a server that breaks either fails here.
    const inflater = (this.inflater ??= createInflateRaw({ windowBits: agreed.serverMaxWindowBits }));
    const payload = await flushThrough(inflater, [message.payload, TRAILER], constants.Z_SYNC_FLUSH);
    if (agreed.serverNoContextTakeover) {
      inflater.close();
      this.inflater = null;
    }
    return { opcode: message.opcode, payload, compressed: true };
  }

  async close(): Promise<void> {
    this.socket.write(encode(0x8, Buffer.from([0x03, 0xe8]), true, false));
    const reply = await this.next(5000).catch((error: Error) => error);
    assert.ok(!(reply instanceof Error) && reply.opcode === 0x8, `expected the close reply, got ${reply instanceof Error ? reply.message : reply.opcode}`);
    this.socket.destroy();
    this.deflater?.close();
    this.inflater?.close();
  }

  destroy(): void {
    this.socket.destroy();
    this.deflater?.close();
    this.inflater?.close();
  }

  private next(ms: number): Promise<Received> {
    const message = this.messages.shift();
    if (message) return Promise.resolve(message);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms);
      this.waiters.push((result) => {
        clearTimeout(timer);
        if (result instanceof Error) reject(result);
        else resolve(result);
      });
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiters.splice(0)) waiter(error);
  }

  private deliver(message: Received): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(message);
    else this.messages.push(message);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const b = this.buffer;
      if (b.length < 2) return;
      let length = b[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.length < 4) return;
        length = b.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (b.length < 10) return;
        length = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + length) return;
      const fin = (b[0]! & 0x80) !== 0;
      const rsv1 = (b[0]! & 0x40) !== 0;
      const opcode = b[0]! & 0x0f;
      assert.equal(b[0]! & 0x30, 0, 'RSV2/RSV3 set by the server');
      assert.equal(b[1]! & 0x80, 0, 'a server frame is masked');
      const payload = Buffer.from(b.subarray(at, at + length));
      this.buffer = b.subarray(at + length);
      if (opcode >= 0x8) {
        assert.equal(rsv1, false, 'RSV1 on a control frame');
        if (opcode === 0x8) this.deliver({ opcode, compressed: false, payload });
        continue;
      }
      if (opcode === 0x0) {
        assert.ok(this.fragments !== null, 'continuation without a message');
        assert.equal(rsv1, false, 'RSV1 on a continuation frame');
        this.fragments.parts.push(payload);
      } else {
        assert.equal(this.fragments, null, 'a new message inside a fragmented one');
        this.fragments = { opcode, compressed: rsv1, parts: [payload] };
      }
      if (fin) {
        const { opcode: kind, compressed, parts } = this.fragments!;
        this.fragments = null;
        this.deliver({ opcode: kind, compressed, payload: Buffer.concat(parts) });
      }
    }
  }
}

/** Write `inputs` to a zlib stream, flush with `flush`, and collect what comes out. */
function flushThrough(stream: DeflateRaw | InflateRaw, inputs: Buffer[], flush: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
    };
    const onError = (error: Error): void => {
      stream.off('data', onData);
      reject(error);
    };
    stream.on('data', onData);
    stream.once('error', onError);
    for (const input of inputs) stream.write(input);
    stream.flush(flush, () => {
      stream.off('data', onData);
      stream.off('error', onError);
      resolve(Buffer.concat(chunks));
    });
  });
}

function encode(opcode: number, payload: Buffer, fin: boolean, rsv1: boolean): Buffer {
  const key = randomBytes(4);
  const length = payload.length;
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (length < 126) head[1] = 0x80 | length;
  else if (length < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(length), 2);
  }
  const body = Buffer.alloc(length);
  for (let i = 0; i < length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([head, key, body]);
}

/** Text like a chat or dashboard sends: compressible, different every time. */
function jsonText(n: number, seed: number): Buffer {
  let text = '[';
  for (let i = 0; text.length < n; i++) text += `{"id":${seed * 7919 + i},"user":"user-${(seed * 31 + i) % 97}","seen":${(i * 13) % 1000},"online":${i % 3 === 0}},`;
  return Buffer.from(text.slice(0, n));
}

const SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072];
const KINDS: [string, (n: number, seed: number) => Buffer, boolean][] = [
  ['text', jsonText, true],
  ['UTF-8 text', (n) => utf8Text(n), true],
  ['binary', (n, seed) => { const bytes = jsonText(n, seed); bytes[0] = 0xff; return bytes; }, false],
  ['random binary', (n, seed) => pseudoRandomBytes(n, seed), false],
];

/** Echo `count` messages of each size, `burst` in flight at once, and check every echo. */
async function echoes(client: DeflateClient, make: (n: number, seed: number) => Buffer, isText: boolean, sizes: number[], count: number, burst = 5): Promise<void> {
  for (const size of sizes) {
    for (let first = 0; first < count; first += burst) {
      const sent: Buffer[] = [];
      for (let i = first; i < Math.min(count, first + burst); i++) {
        const payload = make(size, i + 1);
        sent.push(payload);
        await client.send(payload, isText, true);
      }
      for (const payload of sent) {
        const echo = await client.receive();
        assert.equal(echo.opcode, isText ? 0x1 : 0x2, `echo of a ${size}-byte message has the wrong kind`);
        assert.ok(echo.payload.equals(payload), `echo of a ${size}-byte message differs`);
      }
    }
  }
}

const modes: ('sync' | 'async' | undefined)[] = targetName() === 'humphrey' ? ['sync', 'async'] : [undefined];

for (const mode of modes) {
  describe(`12 compression: messages of many kinds and sizes${mode ? ` (--mode ${mode})` : ''}`, () => {
    const target = useTarget({ deflate: true, mode });
    const defaultOffer: Offer = { clientMaxWindowBits: true };

    for (const [kind, make, isText] of KINDS) {
      test(`12.${KINDS.findIndex(([name]) => name === kind) + 1}: ${kind}, ${SIZES.join('/')} bytes, 10 each`, opts(BIG_TEST_MS), async () => {
        const client = await DeflateClient.open(target(), offerText(defaultOffer), [defaultOffer]);
        try {
          assert.ok(client.agreed, `the server declined ${offerText(defaultOffer)}`);
          await echoes(client, make, isText, SIZES, 10);
          await client.close();
        } finally {
          client.destroy();
        }
      });
    }

    test('12.5: fragmented compressed messages (RSV1 on the first frame only)', opts(BIG_TEST_MS), async () => {
      const client = await DeflateClient.open(target(), offerText(defaultOffer), [defaultOffer]);
      try {
        for (const [size, fragment] of [[4096, 1], [4096, 100], [65536, 1000], [131072, 65536], [300, 7]] as const) {
          const payload = jsonText(size, size);
          await client.send(payload, true, true, fragment);
          const echo = await client.receive();
          assert.ok(echo.payload.equals(payload), `echo of ${size} bytes in ${fragment}-byte fragments differs`);
        }
        await client.close();
      } finally {
        client.destroy();
      }
    });

    test('12.6: compressed and uncompressed messages mixed, and the empty message', opts(BIG_TEST_MS), async () => {
      const client = await DeflateClient.open(target(), offerText(defaultOffer), [defaultOffer]);
      try {
        for (let i = 0; i < 40; i++) {
          const payload = i % 5 === 0 ? Buffer.alloc(0) : jsonText(100 + i * 97, i);
          await client.send(payload, true, i % 2 === 0);
          const echo = await client.receive();
          assert.ok(echo.payload.equals(payload), `message ${i} differs`);
        }
        await client.close();
      } finally {
        client.destroy();
      }
    });
  });

  describe(`13 compression: each offer of parameters${mode ? ` (--mode ${mode})` : ''}`, () => {
    const target = useTarget({ deflate: true, mode });
    const offers: [string, Offer[]][] = [
      ['13.1 permessage-deflate', [{}]],
      ['13.2 client_no_context_takeover', [{ clientNoContextTakeover: true }]],
      ['13.3 server_no_context_takeover', [{ serverNoContextTakeover: true }]],
      ['13.4 both no context takeover', [{ serverNoContextTakeover: true, clientNoContextTakeover: true }]],
      ...[9, 10, 11, 12, 13, 14, 15].map((bits): [string, Offer[]] => [`13.5 client_max_window_bits=${bits}`, [{ clientMaxWindowBits: bits }]]),
      ...[9, 10, 11, 12, 13, 14, 15].map((bits): [string, Offer[]] => [`13.6 server_max_window_bits=${bits}`, [{ serverMaxWindowBits: bits, clientMaxWindowBits: true }]]),
      ['13.7 client_no_context_takeover; client_max_window_bits=9', [{ clientNoContextTakeover: true, clientMaxWindowBits: 9 }]],
      ['13.8 server_no_context_takeover; server_max_window_bits=9', [{ serverNoContextTakeover: true, serverMaxWindowBits: 9 }]],
      ['13.9 every parameter', [{ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 }]],
      ['13.10 several offers, the first acceptable wins', [
        { clientNoContextTakeover: true, clientMaxWindowBits: 9 },
        { clientNoContextTakeover: true },
        {},
      ]],
    ];
    for (const [name, list] of offers) {
      test(`${name}: answer valid, 4 KiB to 128 KiB messages echo`, opts(BIG_TEST_MS), async () => {
        const client = await DeflateClient.open(target(), list.map(offerText).join(', '), list);
        try {
          assert.ok(client.agreed, `the server declined ${list.map(offerText).join(', ')}`);
          await echoes(client, jsonText, true, [4096, 16384, 131072], 6);
          await client.close();
        } finally {
          client.destroy();
        }
      });
    }

    // Offers the server must decline (RFC 7692 section 7): the handshake still succeeds,
    // without the extension, and plain messages work.
    const declined: [string, string][] = [
      ['unknown parameter', 'permessage-deflate; mystery'],
      ['repeated parameter', 'permessage-deflate; client_no_context_takeover; client_no_context_takeover'],
      ['server_max_window_bits without a value', 'permessage-deflate; server_max_window_bits'],
      ['server_max_window_bits=16', 'permessage-deflate; server_max_window_bits=16'],
      ['server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=7'],
      ['server_max_window_bits with a leading zero', 'permessage-deflate; server_max_window_bits=09'],
      ['client_max_window_bits=abc', 'permessage-deflate; client_max_window_bits=abc'],
      ['a value on server_no_context_takeover', 'permessage-deflate; server_no_context_takeover=1'],
      ['malformed', 'permessage-deflate; ;'],
      ['another extension only', 'x-webkit-deflate-frame'],
    ];
    const wsDeclines = { ws: 'refuses the whole handshake with 400 instead of declining the offer, and reads 09 as 9' };
    for (const [name, header] of declined) {
      test(`13.11 declined: ${name}`, opts(undefined, wsDeclines), async () => {
        const client = await DeflateClient.open(target(), header, []);
        try {
          assert.equal(client.answer, undefined, `the server accepted ${JSON.stringify(header)}: ${client.answer}`);
          const payload = jsonText(3000, 1);
          await client.send(payload, true, false);
          const echo = await client.receive();
          assert.equal(echo.compressed, false);
          assert.ok(echo.payload.equals(payload));
          await client.close();
        } finally {
          client.destroy();
        }
      });
    }

    test('13.12 a declined offer followed by a valid one: the valid one is taken', opts(undefined, wsDeclines), async () => {
      const valid: Offer = { clientMaxWindowBits: true };
      const client = await DeflateClient.open(target(), `permessage-deflate; mystery, ${offerText(valid)}`, [valid]);
      try {
        assert.ok(client.agreed);
        await echoes(client, jsonText, true, [5000], 3);
        await client.close();
      } finally {
        client.destroy();
      }
    });

    test('13.13 server_max_window_bits=8: declined, or honoured with a window of 8', opts(), async () => {
      const offer: Offer = { serverMaxWindowBits: 8 };
      const client = await DeflateClient.open(target(), offerText(offer), [offer]);
      try {
        if (client.agreed !== null) {
          assert.equal(client.agreed.serverMaxWindowBits, 8);
          await echoes(client, jsonText, true, [5000], 3);
        } else {
          await client.send(jsonText(5000, 1), true, false);
          assert.ok((await client.receive()).payload.equals(jsonText(5000, 1)));
        }
        await client.close();
      } finally {
        client.destroy();
      }
    });

    test('13.14 RSV1 on a continuation frame fails with 1002', opts(), async () => {
      const offer: Offer = {};
      const client = await DeflateClient.open(target(), offerText(offer), [offer]);
      try {
        const socket = (client as unknown as { socket: net.Socket }).socket;
        socket.write(Buffer.concat([encode(0x1, Buffer.from('ab'), false, false), encode(0x0, Buffer.from('cd'), true, true)]));
        const reply = await client.receive(5000);
        assert.equal(reply.opcode, 0x8);
        assert.equal(reply.payload.readUInt16BE(0), 1002);
      } finally {
        client.destroy();
      }
    });
  });
}
