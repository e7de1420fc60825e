import assert from 'node:assert/strict';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createUpgradeListener, type UpgradeListener } from '../../src/node/listener.js';
import { websocketHandler } from '../../src/stream/handler.js';
import { connect } from '../../src/stream/client.js';

/** Send raw bytes and collect everything the server answers until it closes. */
function exchange(port: number, request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.setEncoding('latin1').on('data', (text: string) => (answer += text));
    socket.on('close', () => resolve(answer)).on('error', reject);
  });
}

describe('createUpgradeListener', () => {
  let server: UpgradeListener;
  let port: number;
  let http: { socket: unknown; bytes: string }[] = [];
  before(async () => {
    const route = websocketHandler(async (stream) => {
      await stream.send(`path ${stream.request?.url} host ${stream.request?.headers.host}`);
      for await (const message of stream) await stream.send(message);
    });
    server = createUpgradeListener((request, socket, head) => route(request, socket, head, undefined), {
      maxHeadSize: 1024,
      headTimeoutMs: 300,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('runs WebSocket connections without node:http', async () => {
    const stream = await connect(`ws://127.0.0.1:${port}/room/1?x=2`);
    assert.equal((await stream.recv()).text(), `path /room/1?x=2 host 127.0.0.1:${port}`);
    await stream.send('ping me back');
    assert.equal((await stream.recv()).text(), 'ping me back');
    await stream.close();
  });

  test('bytes sent right behind the request head reach the connection', async () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const frame = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]);
    const close = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    const request = `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    const answer = await exchange(port, Buffer.concat([Buffer.from(request), frame, close]));
    assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(answer.includes('s3pPLMBiTxaQ9kYGzzhZRbK+xOo='));
    assert.ok(answer.includes('\x81\x02hi'), 'the pipelined frame is echoed');
    assert.ok(answer.endsWith('\x88\x02\x03\xe8'), 'then the close is answered');
  });

  test('plain HTTP gets 426, malformed heads 400, huge heads 431', async () => {
    assert.match(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 426 Upgrade Required\r\n[\s\S]*Upgrade: websocket/);
    assert.match(await exchange(port, 'NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await exchange(port, `GET / HTTP/1.1\r\nX: ${'a'.repeat(2000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  });

  test('a bad handshake gets the handshake status', async () => {
    const answer = await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 12\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 426 [\s\S]*Sec-WebSocket-Version: 13/);
  });

  test('a client that never finishes its head is dropped after the timeout', async () => {
    const started = Date.now();
    assert.equal(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n'), '');
    assert.ok(Date.now() - started < 5000);
  });

  test('onHttpRequest receives non-upgrade connections with the bytes read', async () => {
    const other = createUpgradeListener(() => assert.fail('no upgrade expected'), {
      onHttpRequest: (socket, bytes) => {
        http.push({ socket, bytes: bytes.toString() });
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
      },
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as AddressInfo).port;
    const answer = await exchange(otherPort, 'GET /page HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(answer, /200 OK[\s\S]*ok$/);
    assert.equal(http[0]?.bytes, 'GET /page HTTP/1.1\r\nHost: x\r\n\r\n');
    other.destroyPendingHandshakes();
    await new Promise<void>((resolve) => other.close(() => resolve()));
    http = [];
  });
});

describe('createUpgradeListener: strict request heads, end to end over TCP', () => {
  let server: UpgradeListener;
  let port: number;
  /** The server's side of every connection, in the order they arrived. */
  const serverSockets: Socket[] = [];
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const upgrade = (...extra: string[]): string =>
    `GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra.map((l) => `${l}\r\n`).join('')}\r\n`;

  before(async () => {
    const route = websocketHandler(async (stream) => {
      await stream.send(`__proto__=${String(stream.request?.headers['__proto__'])} constructor=${String(stream.request?.headers['constructor'])}`);
      for await (const message of stream) await stream.send(message);
    });
    // Default limits and a long head timeout: a refusal that waited for the timeout would show.
    server = createUpgradeListener((request, socket, head) => route(request, socket, head, undefined), { headTimeoutMs: 60_000 });
    server.on('connection', (socket: Socket) => serverSockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Send `request`; the server's answer, once the server has closed its side of the connection. */
  async function answerTo(request: string): Promise<string> {
    const index = serverSockets.length;
    const answer = await exchange(port, Buffer.from(request, 'latin1'));
    const socket = serverSockets[index]!;
    if (!socket.destroyed) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the server kept the refused socket open')), 5000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return answer;
  }

  test('each strictness rule answers its status and frees the socket', async () => {
    const cases: [string, string, number][] = [
      ['a repeated Host', upgrade('Host: y'), 400],
      ['\\v in a value', upgrade('X: a\vb'), 400],
      ['0xA0 before the key', upgrade().replace(`Key: ${key}`, `Key: \xa0${key}`), 400],
      ['obsolete line folding', upgrade('X: a', ' b'), 400],
      ['whitespace before a colon', upgrade('X : a'), 400],
      ['a bare LF, head never completed', 'GET /chat HTTP/1.1\r\nHost: x\n', 400],
      ['Transfer-Encoding', upgrade('Transfer-Encoding: chunked'), 400],
      ['Content-Length: 5 and a body', upgrade('Content-Length: 5') + 'hello', 400],
      ['a repeated Sec-WebSocket-Version', upgrade('Sec-WebSocket-Version: 13'), 400],
      ['a key of 17 bytes', upgrade().replace(key, Buffer.alloc(17).toString('base64')), 400],
      ['a target of 9000 bytes', `GET /${'a'.repeat(9000)} HTTP/1.1\r\n`, 414],
      ['101 headers', upgrade(...Array.from({ length: 96 }, (_, i) => `X-${i}: v`)), 431],
      ['a 17 KiB head', `GET / HTTP/1.1\r\nX: ${'a'.repeat(17 * 1024)}`, 431],
      ['HTTP/2.0', upgrade().replace('HTTP/1.1', 'HTTP/2.0'), 505],
    ];
    for (const [what, request, status] of cases) {
      const answer = await answerTo(request);
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), what);
      assert.match(answer, /\r\nConnection: close\r\n/, what);
    }
  });

  test('__proto__ and constructor are ordinary request headers: the upgrade works and nothing is polluted', async () => {
    const close = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
    const request = Buffer.concat([Buffer.from(upgrade('__proto__: polluted', 'constructor: y')), close]);
    const answer = await exchange(port, request);
    assert.match(answer, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(answer.includes('__proto__=polluted constructor=y'), answer);
    assert.ok(answer.endsWith('\x88\x02\x03\xe8'));
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.getPrototypeOf({}), Object.prototype);
  });
});
