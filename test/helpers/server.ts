// Shared helpers for tests that go through real sockets: a plain node:http (or https) server
// with a websocketHandler route, ws-package clients with a message queue, raw TCP exchanges,
// payload builders and bounded waits.

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import WebSocket, { type ClientOptions, type RawData } from 'ws';
import { websocketHandler, type WebSocketHandler, type WebSocketHandlerOptions, type WebSocketRoute } from '../../src/stream/handler.js';

const fixtures = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

/** The test-only certificate (CN=localhost, SAN 127.0.0.1) and its key. */
export const tlsFixture = {
  cert: readFileSync(fixtures + 'cert.pem'),
  key: readFileSync(fixtures + 'key.pem'),
};

export interface TestServer<State = unknown> {
  /** `ws://127.0.0.1:PORT` or `wss://...` (no trailing slash; append a path). */
  url: string;
  port: number;
  server: Server;
  route: WebSocketRoute<State>;
  /** Every socket the server upgraded (destroyed by `close`). */
  sockets: Set<Duplex>;
  /** Shut the route down (close 1001), drop what is left and stop listening. */
  close(): Promise<void>;
}

export interface StartOptions<State> {
  tls?: boolean;
  state?: State;
  host?: string;
}

/**
 * A plain `node:http` (or `node:https`) server on port 0 whose `upgrade` event goes to a
 * `websocketHandler(handler, options)` route.
 */
export async function startServer<State = unknown>(
  handler: WebSocketHandler<State>,
  options: WebSocketHandlerOptions = {},
  start: StartOptions<State> = {},
): Promise<TestServer<State>> {
  const route = websocketHandler(handler, options);
  const server: Server = start.tls ? createHttpsServer({ ...tlsFixture }) : createHttpServer();
  server.on('request', (_req, res) => {
    res.writeHead(404).end('not a websocket route');
  });
  const sockets = new Set<Duplex>();
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    route(request, socket, head, start.state as State);
  });
  const host = start.host ?? '127.0.0.1';
  server.listen(0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${start.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    server,
    route,
    sockets,
    async close() {
      await withTimeout(route.shutdown(), 3000, 'route.shutdown').catch(() => undefined);
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Rejects with a clear message if `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 5 ms until it is true; rejects after `ms`. */
export async function waitFor(condition: () => boolean, ms: number, label: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await sleep(5);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A promise that settles on the next tick with whether `promise` has settled by then. */
export async function isSettled(promise: Promise<unknown>, afterMs = 0): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await sleep(afterMs);
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

// ---------------------------------------------------------------------------------------------
// Payloads

/** `n` bytes of a deterministic pattern that is not valid UTF-8 when n >= 2 (binary data). */
export function binaryPayload(n: number, seed = 1): Buffer {
  const bytes = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  if (n >= 2) {
    bytes[0] = 0xff; // never valid in UTF-8
    bytes[n - 1] = 0xfe;
  }
  return bytes;
}

/** 15 bytes of UTF-8 with 1-, 2-, 3- and 4-byte characters (and a NUL). */
const TEXT_UNIT = Buffer.from('aé€😀Z\u0000語', 'utf8');

/**
 * Exactly `n` bytes of valid UTF-8 mixing 1- to 4-byte characters: the unit repeated, and the
 * bytes after the last whole unit replaced by 'x' (so no character is cut).
 */
export function textBytes(n: number): Buffer {
  const bytes = Buffer.allocUnsafe(n);
  if (n === 0) return bytes;
  bytes.fill(TEXT_UNIT);
  const whole = n - (n % TEXT_UNIT.length);
  bytes.fill(0x78, whole);
  return bytes;
}

/** A string whose UTF-8 encoding is exactly `n` bytes (see `textBytes`). */
export function textPayload(n: number): string {
  return textBytes(n).toString('utf8');
}

// ---------------------------------------------------------------------------------------------
// The ws package as a client

export interface WsReceived {
  data: Buffer;
  isBinary: boolean;
}

/** A `ws` client with a queue of received messages and its close code/reason. */
export class WsClient {
  readonly ws: WebSocket;
  private readonly queue: WsReceived[] = [];
  private waiters: ((m: WsReceived | null) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  pongs = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const message = { data: toBuffer(data), isBinary };
      const waiter = this.waiters.shift();
      if (waiter) waiter(message);
      else this.queue.push(message);
    });
    ws.on('pong', () => this.pongs++);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        for (const waiter of this.waiters.splice(0)) waiter(null);
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on('error', () => undefined);
  }

  static async open(url: string, protocols?: string | string[], options: ClientOptions = {}): Promise<WsClient> {
    const ws = new WebSocket(url, protocols, options);
    const client = new WsClient(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
      }),
      5000,
      `ws open ${url}`,
    );
    return client;
  }

  /** The next message (rejects if the connection closes first or after `ms`). */
  next(ms = 5000): Promise<WsReceived> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return withTimeout(
      new Promise<WsReceived>((resolve, reject) => {
        if (this.ws.readyState === WebSocket.CLOSED) reject(new Error('ws client closed'));
        else this.waiters.push((m) => (m ? resolve(m) : reject(new Error('ws client closed'))));
      }),
      ms,
      'ws client message',
    );
  }

  send(data: string | Buffer, options: { binary?: boolean; fin?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, options, (error) => (error ? reject(error) : resolve())));
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** The status, headers and body of a `ws` client's 'unexpected-response' for `url`. */
export function wsUnexpectedResponse(
  url: string,
  options: ClientOptions = {},
  protocols?: string[],
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, options);
      ws.on('open', () => {
        ws.terminate();
        reject(new Error('connection was accepted'));
      });
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (s: string) => (body += s));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      });
    }),
    5000,
    `unexpected-response from ${url}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Raw TCP

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/** Write `text` on a plain TCP socket and read until the server closes (bounded). */
export function rawExchange(port: number, text: string | Buffer, ms = 5000): Promise<RawResponse> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(parseRaw(Buffer.concat(chunks).toString('latin1'))));
      socket.write(text);
    }),
    ms,
    'raw exchange',
  );
}

/**
 * Write an upgrade request on a plain TCP socket and resolve with the response head (and the
 * body, when it has a Content-Length) without waiting for the server to close; then drop the
 * socket. Bytes after the head of a 101 are in `rest`.
 */
export function rawUpgrade(port: number, text: string | Buffer, ms = 5000): Promise<RawResponse & { rest: Buffer }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = netConnect(port, '127.0.0.1');
      let data = Buffer.alloc(0);
      const finish = (): void => {
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        const parsed = parseRaw(data.subarray(0, end + 4).toString('latin1'));
        const length = Number(parsed.headers['content-length'] ?? 0);
        if (parsed.status !== 101 && data.length < end + 4 + length) return;
        const rest = data.subarray(end + 4);
        socket.destroy();
        resolve({ ...parsed, body: parsed.status === 101 ? '' : rest.subarray(0, length).toString('utf8'), rest });
      };
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        finish();
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`socket closed before a complete response: ${data.toString('latin1')}`)));
      socket.write(text);
    }),
    ms,
    'raw upgrade',
  );
}

export function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: end === -1 ? '' : raw.slice(end + 4), raw };
}

/** A raw upgrade request for `path` with optional extra header lines. */
export function upgradeRequest(path: string, extra: Record<string, string> = {}): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...Object.entries(extra).map(([name, value]) => `${name}: ${value}`),
  ];
  return lines.join('\r\n') + '\r\n\r\n';
}

export interface FakeServer {
  port: number;
  url: string;
  /** The raw request heads received. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A raw TCP server that reads each request head and answers with whatever `answer` returns
 * (`null` to say nothing and keep the socket open). For crafting broken handshakes. Bytes the
 * client sends after its request head go to `onData`.
 */
export async function startFakeServer(
  answer: (head: string, socket: Socket) => string | Buffer | null,
  onData?: (bytes: Buffer, socket: Socket) => void,
): Promise<FakeServer> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered: Buffer | null = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (buffered === null) {
        onData?.(chunk, socket);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const rest = buffered.subarray(end + 4);
      buffered = null;
      requests.push(head);
      const response = answer(head, socket);
      if (response !== null) socket.write(response);
      if (rest.length > 0) onData?.(rest, socket);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The header value `name` from a raw request head (case-insensitive). */
export function headerOf(head: string, name: string): string | undefined {
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name.toLowerCase()) return line.slice(colon + 1).trim();
  }
  return undefined;
}
