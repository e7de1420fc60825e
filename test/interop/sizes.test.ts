// Message sizes at every frame-length boundary (0, 125, 126, 65535, 65536) and 16 MiB, text and
// binary, sent whole and fragmented, echoed byte-exact, for three pairings:
//   our client -> our server, ws client -> our server, our client -> ws server.
// Echo servers answer the way they were asked: `/whole` echoes in one frame, `/fragmented` in
// three fragments, so both directions carry fragmented messages too.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { connect } from '../../src/stream/client.js';
import type { Message } from '../../src/message.js';
import type { WebSocketStream } from '../../src/stream/stream.js';
import { binaryPayload, startServer, textBytes, withTimeout, WsClient, type TestServer } from '../helpers/server.js';

const MiB = 1024 * 1024;
const SIZES = [0, 125, 126, 65535, 65536, 16 * MiB];

const payloadCache = new Map<string, Buffer>();
/** The payload for a size and kind; text is valid UTF-8 with multi-byte characters. */
function payload(size: number, isText: boolean): Buffer {
  const key = `${size}:${isText}`;
  let bytes = payloadCache.get(key);
  if (bytes === undefined) {
    bytes = isText ? textBytes(size) : binaryPayload(size, size + 1);
    assert.equal(bytes.length, size);
    payloadCache.set(key, bytes);
  }
  return bytes;
}

/** Three pieces, cut one byte past a third and two thirds (inside characters for text). */
function split(bytes: Buffer): Buffer[] {
  const a = Math.min(bytes.length, Math.floor(bytes.length / 3) + 1);
  const b = Math.min(bytes.length, Math.max(a, Math.floor((2 * bytes.length) / 3) + 1));
  return [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)];
}

async function sendFragmented(stream: WebSocketStream, bytes: Buffer, isText: boolean): Promise<void> {
  const [a, b, c] = split(bytes);
  await stream.sendFragment(a!, false, isText);
  await stream.sendFragment(b!, false, isText);
  await stream.sendFragment(c!, true, isText);
}

interface Echoed {
  bytes: Buffer;
  isText: boolean;
}

function check(echoed: Echoed, sent: Buffer, isText: boolean, label: string): void {
  assert.equal(echoed.isText, isText, `${label}: kind`);
  assert.equal(echoed.bytes.length, sent.length, `${label}: length`);
  assert.ok(echoed.bytes.equals(sent), `${label}: bytes differ`);
}

const modes = ['whole', 'fragmented'] as const;
const kinds = [true, false];
const label = (size: number, isText: boolean, mode: string): string => `${size} bytes ${isText ? 'text' : 'binary'} ${mode}`;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

let ours: TestServer;
let wsServerUrl: string;

before(async () => {
  ours = await startServer(async (stream) => {
    const fragmented = stream.request?.url === '/fragmented';
    for await (const message of stream) {
      if (fragmented) await sendFragmented(stream, message.bytes(), message.isText);
      else await stream.send(message);
    }
  });
  cleanups.push(() => ours.close());

  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws, request) => {
    const fragmented = request.url === '/fragmented';
    ws.on('message', (data: Buffer, isBinary) => {
      if (!fragmented) {
        ws.send(data, { binary: isBinary });
        return;
      }
      const [a, b, c] = split(data);
      ws.send(a!, { binary: isBinary, fin: false });
      ws.send(b!, { binary: isBinary, fin: false });
      ws.send(c!, { binary: isBinary, fin: true });
    });
  });
  wsServerUrl = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  cleanups.push(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
});

/** Our client against `baseUrl`: one connection per mode, reused across sizes. */
function ourClientPairing(name: string, baseUrl: () => string): void {
  describe(`sizes: our client -> ${name}`, () => {
    const streams = new Map<string, WebSocketStream>();
    const streamFor = async (mode: string): Promise<WebSocketStream> => {
      let stream = streams.get(mode);
      if (stream === undefined) {
        stream = await connect(`${baseUrl()}/${mode}`);
        streams.set(mode, stream);
      }
      return stream;
    };
    after(async () => {
      await Promise.all([...streams.values()].map((stream) => stream.close()));
    });

    for (const size of SIZES) {
      test(`${size} bytes: text and binary, whole and fragmented`, async () => {
        for (const mode of modes) {
          const stream = await streamFor(mode);
          for (const isText of kinds) {
            const sent = payload(size, isText);
            if (mode === 'whole') await stream.send(isText ? sent.toString('utf8') : sent);
            else await sendFragmented(stream, sent, isText);
            const message: Message = await withTimeout(stream.recv(), 10_000, label(size, isText, mode));
            check({ bytes: message.bytes(), isText: message.isText }, sent, isText, label(size, isText, mode));
            if (isText && size <= 65536) assert.equal(message.text(), sent.toString('utf8'));
          }
        }
      });
    }
  });
}

ourClientPairing('our server', () => ours.url);
ourClientPairing('ws server', () => wsServerUrl);

describe('sizes: ws client -> our server', () => {
  const clients = new Map<string, WsClient>();
  const clientFor = async (mode: string): Promise<WsClient> => {
    let client = clients.get(mode);
    if (client === undefined) {
      client = await WsClient.open(`${ours.url}/${mode}`);
      clients.set(mode, client);
    }
    return client;
  };
  after(() => {
    for (const client of clients.values()) client.ws.close();
  });

  for (const size of SIZES) {
    test(`${size} bytes: text and binary, whole and fragmented`, async () => {
      for (const mode of modes) {
        const client = await clientFor(mode);
        for (const isText of kinds) {
          const sent = payload(size, isText);
          if (mode === 'whole') {
            await client.send(sent, { binary: !isText });
          } else {
            const [a, b, c] = split(sent);
            await client.send(a!, { binary: !isText, fin: false });
            await client.send(b!, { binary: !isText, fin: false });
            await client.send(c!, { binary: !isText, fin: true });
          }
          const received = await client.next(10_000);
          check({ bytes: received.data, isText: !received.isBinary }, sent, isText, label(size, isText, mode));
        }
      }
      assert.equal(clients.get('whole')!.ws.readyState, WebSocket.OPEN);
    });
  }
});
