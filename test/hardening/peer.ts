// A WebSocket client over raw TCP (or TLS) that can misbehave: it writes exactly the bytes it
// is told (frames it encodes itself, with real masking, or any garbage), stops reading when
// told, ends or resets its socket at any point, and parses what the server sends strictly.
// Used by the hostile-peer tests and by `npm run soak`.

import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Where the server is. `ca` trusts its certificate when `tls` is set. */
export interface PeerTarget {
  host: string;
  port: number;
  tls: boolean;
  ca?: Buffer | undefined;
}

export function targetOf(url: string, ca?: Buffer): PeerTarget {
  const parsed = new URL(url);
  const secure = parsed.protocol === 'wss:';
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port), tls: secure, ca: secure ? ca : undefined };
}

/**
 * One masked client frame (`mask: false` leaves it unmasked, which a server must refuse).
 * `declaredLength` writes another length into the header than the payload has (the start of a
 * frame whose rest is never sent).
 */
export function frame(opcode: number, payload: Uint8Array = Buffer.alloc(0), fin = true, mask: boolean = true, declaredLength = payload.length): Buffer {
  const length = payload.length;
  const extra = declaredLength < 126 ? 0 : declaredLength < 65536 ? 2 : 8;
  const header = Buffer.allocUnsafe(2 + extra + (mask ? 4 : 0));
  header[0] = (fin ? 0x80 : 0) | opcode;
  header[1] = (mask ? 0x80 : 0) | (extra === 0 ? declaredLength : extra === 2 ? 126 : 127);
  if (extra === 2) header.writeUInt16BE(declaredLength, 2);
  if (extra === 8) header.writeBigUInt64BE(BigInt(declaredLength), 2);
  if (!mask) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  key.copy(header, 2 + extra);
  // Masked a 32-bit word at a time, in a buffer of its own (so aligned), then the tail bytes.
  const body = Buffer.allocUnsafeSlow(length);
  body.set(payload);
  const words = new Uint32Array(body.buffer, body.byteOffset, length >>> 2);
  const keyWord = key.readUInt32LE(0);
  for (let i = 0; i < words.length; i++) words[i] ^= keyWord;
  for (let i = length & ~3; i < length; i++) body[i] = body[i]! ^ key[i & 3]!;
  return Buffer.concat([header, body]);
}

/** A message as frames: `sizes` gives each fragment's payload size (the last takes the rest). */
export function fragmented(opcode: number, payload: Buffer, sizes: readonly number[]): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i <= sizes.length; i++) {
    const last = i === sizes.length;
    const end = last ? payload.length : Math.min(payload.length, offset + sizes[i]!);
    frames.push(frame(i === 0 ? opcode : OP.CONT, payload.subarray(offset, end), last));
    offset = end;
  }
  return frames;
}

export function closeFrame(code?: number, reason = ''): Buffer {
  if (code === undefined) return frame(OP.CLOSE);
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return frame(OP.CLOSE, body);
}

export function upgradeRequest(target: PeerTarget, key: string, path = '/', extraHeaders = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`
  );
}

/** A connected socket (TLS done, if any), with an error listener from the start. */
export interface RawSocket {
  /** What to read and write (the TLS socket for wss). */
  socket: net.Socket;
  /** The TCP socket underneath, for `resetAndDestroy()`. */
  tcp: net.Socket;
  /** The socket errors seen (ECONNRESET and the like are normal here). */
  errors: Error[];
  /** Resolves when the socket has closed. */
  closed: Promise<void>;
}

export function openSocket(target: PeerTarget, timeoutMs = 10_000): Promise<RawSocket> {
  return new Promise((resolve, reject) => {
    const errors: Error[] = [];
    const tcp = net.connect({ host: target.host, port: target.port });
    tcp.on('error', (error) => errors.push(error));
    const socket = target.tls
      ? tls.connect({ socket: relay(tcp), servername: net.isIP(target.host) ? undefined : target.host, ca: target.ca, rejectUnauthorized: target.ca !== undefined })
      : tcp;
    if (socket !== tcp) socket.on('error', (error) => errors.push(error));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${target.host}:${target.port} took over ${timeoutMs} ms`));
    }, timeoutMs);
    const ready = (): void => {
      clearTimeout(timer);
      socket.off('close', failed);
      resolve({ socket, tcp, errors, closed });
    };
    const failed = (): void => {
      clearTimeout(timer);
      reject(errors[0] ?? new Error('socket closed while connecting'));
    };
    socket.once('close', failed);
    socket.once(target.tls ? 'secureConnect' : 'connect', ready);
  });
}

/**
 * A stream over `tcp` for TLS to run on. Handing the TCP socket itself to `tls.connect` lets
 * TLS take over its handle, and `resetAndDestroy()` on it then crashes Node (SIGSEGV in
 * Node 20); through this relay the TCP socket stays ours to reset.
 */
function relay(tcp: net.Socket): Duplex {
  const stream = new Duplex({
    read: () => void tcp.resume(),
    write: (chunk: Buffer, _encoding, callback) => void tcp.write(chunk, (error) => callback(error ?? null)),
    final: (callback) => {
      tcp.end();
      callback();
    },
    destroy: (error, callback) => {
      tcp.destroy();
      callback(error);
    },
  });
  tcp.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) tcp.pause();
  });
  tcp.on('end', () => stream.push(null));
  tcp.on('close', () => stream.destroy());
  return stream;
}

/** A parsed HTTP response head. */
export interface ResponseHead {
  status: number;
  headers: Map<string, string>;
  raw: string;
}

export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]!);
  if (status === null) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(status[1]), headers, raw: text };
}

/** Something the server sent after the handshake. */
export type ServerEvent =
  | { type: 'message'; isText: boolean; data: Buffer }
  | { type: 'ping' | 'pong'; data: Buffer }
  | { type: 'close'; code: number | undefined; reason: string }
  /** The server broke RFC 6455 (masked frame, bad opcode, ...); parsing stops. */
  | { type: 'violation'; what: string };

/**
 * Parses server frames as they arrive, strictly: frames must be unmasked, opcodes and
 * fragmentation valid, control frames short. Chunks are kept in a list (no quadratic joins).
 */
export class ServerFrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private fragments: Buffer[] | null = null;
  private fragmentOpcode = 0;
  private dead = false;
  /** Payload bytes of data frames parsed so far. */
  dataBytes = 0;

  constructor(private readonly emit: (event: ServerEvent) => void) {}

  push(chunk: Buffer): void {
    if (this.dead || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < 2) return;
      const head = this.peek(Math.min(this.buffered, 10));
      const b0 = head[0]!;
      const b1 = head[1]!;
      if (b1 & 0x80) return this.violate('masked frame from the server');
      if (b0 & 0x70) return this.violate('reserved bits set');
      let length = b1 & 0x7f;
      let size = 2;
      if (length === 126) {
        if (head.length < 4) return;
        length = head.readUInt16BE(2);
        size = 4;
      } else if (length === 127) {
        if (head.length < 10) return;
        length = Number(head.readBigUInt64BE(2));
        size = 10;
      }
      if (this.buffered < size + length) return;
      this.take(size);
      const payload = this.take(length);
      this.onFrame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
      if (this.dead) return;
    }
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    if (opcode >= 0x8) {
      if (!fin || payload.length > 125) return this.violate('bad control frame');
      if (opcode === OP.CLOSE) {
        this.dead = true;
        if (payload.length === 1) return this.violate('1-byte close payload');
        this.emit({ type: 'close', code: payload.length >= 2 ? payload.readUInt16BE(0) : undefined, reason: payload.subarray(2).toString() });
      } else if (opcode === OP.PING || opcode === OP.PONG) {
        this.emit({ type: opcode === OP.PING ? 'ping' : 'pong', data: payload });
      } else {
        this.violate(`opcode ${opcode}`);
      }
      return;
    }
    this.dataBytes += payload.length;
    if (opcode === OP.CONT) {
      if (this.fragments === null) return this.violate('continuation without a message');
      this.fragments.push(payload);
    } else if (opcode === OP.TEXT || opcode === OP.BINARY) {
      if (this.fragments !== null) return this.violate('new message inside a fragmented one');
      this.fragments = [payload];
      this.fragmentOpcode = opcode;
    } else {
      return this.violate(`opcode ${opcode}`);
    }
    if (!fin) return;
    const data = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
    this.fragments = null;
    this.emit({ type: 'message', isText: this.fragmentOpcode === OP.TEXT, data });
  }

  private violate(what: string): void {
    this.dead = true;
    this.chunks = [];
    this.emit({ type: 'violation', what });
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, part);
      at += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

export interface OpenOptions {
  path?: string;
  /** Extra header lines, each ending in CRLF. */
  headers?: string;
  timeoutMs?: number;
}

/**
 * A WebSocket client connection over a raw socket. Events from the server are queued in
 * order and taken with `next()`; `onEvent` sees each one as it arrives instead, if set.
 */
export class Peer {
  readonly raw: RawSocket;
  readonly response: ResponseHead;
  private readonly reader: ServerFrameReader;
  private readonly queue: ServerEvent[] = [];
  private waiter: ((event: ServerEvent | null) => void) | null = null;
  private ended = false;
  /** Set to see events as they arrive (they are then not queued). */
  onEvent: ((event: ServerEvent) => void) | null = null;
  /** Resolves when the server has ended or reset the TCP connection (or we destroyed it). */
  readonly closed: Promise<void>;

  private constructor(raw: RawSocket, response: ResponseHead, rest: Buffer) {
    this.raw = raw;
    this.response = response;
    this.reader = new ServerFrameReader((event) => this.deliver(event));
    this.closed = raw.closed.then(() => {
      this.ended = true;
      this.wake(null);
    });
    raw.socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    this.reader.push(rest);
  }

  /** Connect and complete the opening handshake (rejects unless the server answers 101 correctly). */
  static async open(target: PeerTarget, options: OpenOptions = {}): Promise<Peer> {
    const raw = await openSocket(target, options.timeoutMs);
    const key = randomBytes(16).toString('base64');
    raw.socket.write(upgradeRequest(target, key, options.path, options.headers));
    const { head, rest } = await readResponseHead(raw, options.timeoutMs ?? 10_000);
    const response = parseResponseHead(head);
    const expected = createHash('sha1').update(key + GUID).digest('base64');
    if (response.status !== 101 || response.headers.get('sec-websocket-accept') !== expected) {
      raw.socket.destroy();
      throw new Error(`handshake refused: ${head}`);
    }
    return new Peer(raw, response, rest);
  }

  get socket(): net.Socket {
    return this.raw.socket;
  }

  /** Payload bytes of data frames received so far. */
  get receivedDataBytes(): number {
    return this.reader.dataBytes;
  }

  write(bytes: Buffer | string): boolean {
    return this.raw.socket.write(bytes);
  }

  sendText(text: string | Buffer): void {
    this.write(frame(OP.TEXT, typeof text === 'string' ? Buffer.from(text) : text));
  }

  sendBinary(data: Buffer): void {
    this.write(frame(OP.BINARY, data));
  }

  /** The next event from the server; rejects after `timeoutMs`, or if the connection ends first. */
  next(timeoutMs = 10_000): Promise<ServerEvent> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new Error('connection closed with no further event'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no event from the server within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (event) => {
        clearTimeout(timer);
        this.waiter = null;
        if (event === null) reject(new Error('connection closed with no further event'));
        else resolve(event);
      };
    });
  }

  /** The next event, which must be a message; returns its data. */
  async nextMessage(timeoutMs?: number): Promise<{ isText: boolean; data: Buffer }> {
    const event = await this.next(timeoutMs);
    if (event.type !== 'message') throw new Error(`expected a message, got ${describe(event)}`);
    return event;
  }

  /** The next event, which must be a close frame; returns its code. */
  async nextClose(timeoutMs?: number): Promise<number | undefined> {
    const event = await this.next(timeoutMs);
    if (event.type !== 'close') throw new Error(`expected a close frame, got ${describe(event)}`);
    return event.code;
  }

  /** Close handshake from our side: send close, expect the server's close and its TCP close. */
  async closeCleanly(code = 1000, timeoutMs = 10_000): Promise<number | undefined> {
    this.write(closeFrame(code));
    let reply: number | undefined;
    for (;;) {
      const event = await this.next(timeoutMs);
      if (event.type === 'close') {
        reply = event.code;
        break;
      }
      if (event.type === 'violation') throw new Error(`server broke the protocol: ${event.what}`);
    }
    await this.closedWithin(timeoutMs);
    return reply;
  }

  /** Resolves when the TCP connection has closed; rejects after `timeoutMs`. */
  closedWithin(timeoutMs = 10_000): Promise<void> {
    return withDeadline(this.closed, timeoutMs, 'the server did not close the TCP connection');
  }

  /** Abort with a TCP RST (for TLS, on the TCP socket underneath). */
  reset(): void {
    resetSocket(this.raw);
  }

  private deliver(event: ServerEvent): void {
    if (this.onEvent !== null) return this.onEvent(event);
    if (this.waiter !== null) this.waiter(event);
    else this.queue.push(event);
  }

  private wake(event: ServerEvent | null): void {
    if (this.waiter !== null) this.waiter(event);
  }
}

export function resetSocket(raw: RawSocket): void {
  if (raw.tcp.destroyed) return;
  raw.tcp.resetAndDestroy();
  if (raw.socket !== raw.tcp) raw.socket.destroy();
}

export function describe(event: ServerEvent): string {
  switch (event.type) {
    case 'message':
      return `${event.isText ? 'text' : 'binary'} message of ${event.data.length} bytes`;
    case 'close':
      return `close ${event.code ?? '(no code)'} ${JSON.stringify(event.reason)}`;
    case 'violation':
      return `protocol violation: ${event.what}`;
    default:
      return `${event.type} of ${event.data.length} bytes`;
  }
}

/** Read until the end of an HTTP response head; `rest` is what followed it. */
export function readResponseHead(raw: RawSocket, timeoutMs = 10_000): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no response head within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end >= 0) finish(null, received.toString('latin1', 0, end), received.subarray(end + 4));
    };
    const onClose = (): void => finish(new Error(`connection closed before a response head (got ${JSON.stringify(received.toString('latin1'))})`));
    const finish = (error: Error | null, head = '', rest = Buffer.alloc(0)): void => {
      clearTimeout(timer);
      raw.socket.off('data', onData);
      raw.socket.off('close', onClose);
      if (error) reject(error);
      else resolve({ head, rest });
    };
    raw.socket.on('data', onData);
    raw.socket.on('close', onClose);
  });
}

export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error);
      },
    );
  });
}

/** What came back for some raw bytes: everything the server sent until it closed. */
export interface Exchange {
  /** All bytes received, as latin1 text. */
  text: string;
  /** The status of the first response, or undefined when nothing HTTP-like came back. */
  status: number | undefined;
  /** How many HTTP status lines appear in what came back. */
  responses: number;
}

/**
 * Connect, write `bytes` (in one write, or in the given pieces), and read until the server
 * closes the connection. Rejects if it has not closed within `timeoutMs`.
 */
export async function exchange(target: PeerTarget, bytes: string | Buffer | (string | Buffer)[], timeoutMs = 10_000): Promise<Exchange> {
  const raw = await openSocket(target);
  const chunks: Buffer[] = [];
  raw.socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  for (const piece of Array.isArray(bytes) ? bytes : [bytes]) raw.socket.write(piece);
  try {
    await withDeadline(raw.closed, timeoutMs, 'the server did not close the connection');
  } finally {
    raw.socket.destroy();
  }
  const text = Buffer.concat(chunks).toString('latin1');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text);
  return { text, status: status === null ? undefined : Number(status[1]), responses: text.match(/HTTP\/1\.[01] \d{3}/g)?.length ?? 0 };
}
