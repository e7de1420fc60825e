// A black-box WebSocket client for conformance testing. It speaks raw bytes over node:net so
// that it can send anything, valid or not (any opcode, reserved bits, unmasked frames,
// non-minimal length encodings, frames chopped into arbitrary TCP writes), and it checks every
// byte the server sends back against RFC 6455.
//
// Two layers:
//   - frame encoding / delivery (`encodeFrame`, `RawClient.send`), deliberately permissive;
//   - a strict parser of server frames that turns them into ordered events (message, ping,
//     pong, close, tcp-close) and records every protocol violation the server commits
//     (masked frames, reserved bits, non-minimal lengths, bytes after its close frame, ...).
// Expectation helpers (`expectMessage`, `expectPong`, `expectFail`, ...) consume the events in
// order, so an unexpected event anywhere is a failure with a description of what was seen.

import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

export const OP = {
  CONT: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Default time to wait for one expected event from the server. */
export const WAIT_MS = 2000;

export interface TargetAddress {
  host: string;
  port: number;
}

// ---------------------------------------------------------------------------------------------
// Encoding

export type Bytes = Buffer | Uint8Array | string;

export function toBuffer(data: Bytes | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export interface FrameSpec {
  opcode: number;
  payload?: Bytes;
  /** Default true. */
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** true (default): random key; a 4-byte Buffer: that key; false: send unmasked. */
  mask?: boolean | Buffer;
  /** Length encoding: 7 (in the second byte), 16 or 64 bit. Default: minimal. */
  lengthEncoding?: 7 | 16 | 64;
  /**
   * Length written in the header instead of the payload's real length (for header-only frames
   * or lies). With a 64-bit encoding any value up to 2^64-1 can be given as a bigint.
   */
  declaredLength?: number | bigint;
}

export function maskBytes(data: Buffer, key: Buffer, offset = 0): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[(i + offset) & 3]!;
  return out;
}

/** The bytes of one frame, exactly as specified. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = toBuffer(spec.payload);
  const fin = spec.fin ?? true;
  const declared =
    spec.declaredLength !== undefined ? BigInt(spec.declaredLength) : BigInt(payload.length);
  const encoding = spec.lengthEncoding ?? (declared < 126n ? 7 : declared < 65536n ? 16 : 64);
  if (encoding === 7 && declared > 125n) throw new Error(`length ${declared} needs 16/64 bits`);
  if (encoding === 16 && declared > 0xffffn) throw new Error(`length ${declared} needs 64 bits`);
  if (declared > 0xffffffffffffffffn) throw new Error(`length ${declared} does not fit`);
  const masked = spec.mask !== false;
  const key = Buffer.isBuffer(spec.mask) ? spec.mask : randomBytes(4);
  if (key.length !== 4) throw new Error('mask key must be 4 bytes');

  const extra = encoding === 7 ? 0 : encoding === 16 ? 2 : 8;
  const header = Buffer.alloc(2 + extra + (masked ? 4 : 0));
  header[0] =
    (fin ? 0x80 : 0) |
    (spec.rsv1 ? 0x40 : 0) |
    (spec.rsv2 ? 0x20 : 0) |
    (spec.rsv3 ? 0x10 : 0) |
    (spec.opcode & 0x0f);
  header[1] = (masked ? 0x80 : 0) | (encoding === 7 ? Number(declared) : encoding === 16 ? 126 : 127);
  if (encoding === 16) header.writeUInt16BE(Number(declared), 2);
  if (encoding === 64) header.writeBigUInt64BE(declared, 2);
  if (masked) key.copy(header, 2 + extra);
  return Buffer.concat([header, masked ? maskBytes(payload, key) : payload]);
}

/** Payload of a close frame: nothing, a code, or a code and a reason. */
export function closePayload(code?: number, reason: Bytes = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = toBuffer(reason);
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

// Convenience constructors (masked, FIN set unless told otherwise).
export const text = (payload: Bytes, extra: Partial<FrameSpec> = {}) =>
  encodeFrame({ opcode: OP.TEXT, payload, ...extra });
export const binary = (payload: Bytes, extra: Partial<FrameSpec> = {}) =>
  encodeFrame({ opcode: OP.BINARY, payload, ...extra });
export const cont = (payload: Bytes, extra: Partial<FrameSpec> = {}) =>
  encodeFrame({ opcode: OP.CONT, payload, ...extra });
export const ping = (payload: Bytes = '', extra: Partial<FrameSpec> = {}) =>
  encodeFrame({ opcode: OP.PING, payload, ...extra });
export const pong = (payload: Bytes = '', extra: Partial<FrameSpec> = {}) =>
  encodeFrame({ opcode: OP.PONG, payload, ...extra });
export const close = (code?: number, reason: Bytes = '', extra: Partial<FrameSpec> = {}) =>
  encodeFrame({ opcode: OP.CLOSE, payload: closePayload(code, reason), ...extra });

/** A message split into data frames at the given payload sizes (the last one gets the rest). */
export function fragments(
  opcode: number,
  payload: Bytes,
  sizes: number[],
  extra: Partial<FrameSpec> = {},
): Buffer[] {
  const data = toBuffer(payload);
  const frames: Buffer[] = [];
  let offset = 0;
  for (let i = 0; i <= sizes.length; i++) {
    const last = i === sizes.length;
    const end = last ? data.length : Math.min(data.length, offset + sizes[i]!);
    frames.push(
      encodeFrame({
        ...extra,
        opcode: i === 0 ? opcode : OP.CONT,
        payload: data.subarray(offset, end),
        fin: last,
      }),
    );
    offset = end;
  }
  return frames;
}

/** Frames of `fragmentSize` payload bytes each (at least one frame). */
export function evenFragments(opcode: number, payload: Bytes, fragmentSize: number): Buffer[] {
  const data = toBuffer(payload);
  const sizes: number[] = [];
  for (let left = data.length; left > fragmentSize; left -= fragmentSize) sizes.push(fragmentSize);
  return fragments(opcode, data, sizes);
}

// ---------------------------------------------------------------------------------------------
// Delivery

/** Small deterministic PRNG (mulberry32) so that chunkings are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Chunking =
  | 'bytes' // one byte per write
  | number // fixed chunk size
  | number[] // explicit sizes; whatever is left goes in one last write
  | { random: [number, number]; seed?: number };

export interface Delivery {
  chunks?: Chunking;
  /** Pause between chunks. Default: 1 ms for up to 300 chunks, else just yield to the loop. */
  delayMs?: number;
}

export function splitBytes(data: Buffer, chunking: Chunking): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  const push = (n: number) => {
    const end = Math.min(data.length, offset + Math.max(1, n));
    out.push(data.subarray(offset, end));
    offset = end;
  };
  if (chunking === 'bytes') while (offset < data.length) push(1);
  else if (typeof chunking === 'number') while (offset < data.length) push(chunking);
  else if (Array.isArray(chunking)) {
    for (const n of chunking) if (offset < data.length) push(n);
    if (offset < data.length) push(data.length - offset);
  } else {
    const rnd = prng(chunking.seed ?? 0x5eed);
    const [min, max] = chunking.random;
    while (offset < data.length) push(min + Math.floor(rnd() * (max - min + 1)));
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const yieldLoop = () => new Promise<void>((r) => setImmediate(r));

// ---------------------------------------------------------------------------------------------
// Events

export type ServerEvent =
  | { type: 'message'; opcode: number; data: Buffer; frames: number }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  | { type: 'close'; code: number | null; reason: Buffer; payload: Buffer }
  | { type: 'tcp-close'; how: string };

export function hex(data: Buffer, max = 48): string {
  const shown = data.subarray(0, max).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  return data.length > max ? `${shown} ... (${data.length} bytes)` : shown || '(empty)';
}

export function describeEvent(e: ServerEvent): string {
  switch (e.type) {
    case 'message':
      return `${e.opcode === OP.TEXT ? 'text' : 'binary'} message of ${e.data.length} bytes in ${
        e.frames
      } frame(s): ${hex(e.data, 24)}`;
    case 'ping':
    case 'pong':
      return `${e.type} with ${e.data.length}-byte payload: ${hex(e.data, 24)}`;
    case 'close':
      return e.code === null
        ? `close frame with empty payload`
        : `close frame code ${e.code}${e.reason.length ? ` reason ${JSON.stringify(e.reason.toString('latin1'))}` : ''} (payload ${hex(e.payload, 24)})`;
    case 'tcp-close':
      return `TCP connection closed by server (${e.how})`;
  }
}

// A queue of received chunks that can be peeked and consumed without concatenating everything.
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    if (b.length) {
      this.chunks.push(b);
      this.length += b.length;
    }
  }
  peek(n: number): Buffer {
    if (this.chunks[0] && this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    const parts: Buffer[] = [];
    let need = n;
    for (const c of this.chunks) {
      if (need <= 0) break;
      parts.push(c.subarray(0, need));
      need -= c.length;
    }
    return Buffer.concat(parts);
  }
  take(n: number): Buffer {
    const out = this.peek(n);
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        this.chunks.shift();
        left -= c.length;
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.length -= n;
    return out;
  }
}

const VALID_CLOSE_CODE = (code: number) =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
  (code >= 3000 && code <= 4999);

// ---------------------------------------------------------------------------------------------
// HTTP helpers

export interface HttpResponse {
  status: number;
  statusLine: string;
  headers: Map<string, string>;
  /** Bytes after the header block (body or WebSocket frames). */
  rest: Buffer;
  raw: string;
}

export function parseHttpHead(head: string): Omit<HttpResponse, 'rest'> {
  const lines = head.split('\r\n');
  const statusLine = lines[0] ?? '';
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) throw new Error(`malformed HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`malformed HTTP header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { status: Number(m[1]), statusLine, headers, raw: head };
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

export interface HandshakeOptions {
  path?: string;
  /** Request method (default GET). */
  method?: string;
  /** HTTP version in the request line (default 1.1). */
  httpVersion?: string;
  /** Header lines to use instead of the defaults (name -> value; null removes a default). */
  headers?: Record<string, string | null>;
  /** Sec-WebSocket-Key to send (default: 16 random bytes, base64). */
  key?: string;
  /** Bytes appended to the request in the same write (e.g. a first frame). */
  trailing?: Buffer;
  /** How to chop the request bytes. */
  delivery?: Delivery;
  timeoutMs?: number;
}

export function buildRequest(target: TargetAddress, key: string, opts: HandshakeOptions): string {
  const defaults: Record<string, string | null> = {
    Host: `${target.host}:${target.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  };
  const merged: Record<string, string | null> = { ...defaults };
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    // Replace a default case-insensitively so that callers can change the spelling.
    for (const d of Object.keys(merged)) if (d.toLowerCase() === name.toLowerCase()) delete merged[d];
    merged[name] = value;
  }
  let req = `${opts.method ?? 'GET'} ${opts.path ?? '/'} HTTP/${opts.httpVersion ?? '1.1'}\r\n`;
  for (const [name, value] of Object.entries(merged)) if (value !== null) req += `${name}: ${value}\r\n`;
  return req + '\r\n';
}

// ---------------------------------------------------------------------------------------------
// The client

export class RawClient {
  readonly socket: net.Socket;
  /** Protocol violations committed by the server, in order. */
  readonly violations: string[] = [];
  /** Every event seen, for diagnostics. */
  readonly history: ServerEvent[] = [];
  /** Total bytes received after the handshake, and the first ones. */
  rxTotal = 0;
  private rxHead = Buffer.alloc(0);
  private rx = new ByteQueue();
  private queue: ServerEvent[] = [];
  private wake: (() => void) | null = null;
  private tcpClosed = false;
  private closeFrameSeen = false;
  private parserDead = false;
  private fragment: { opcode: number; parts: Buffer[]; frames: number } | null = null;
  private handshakeDone = false;
  private handshakeBuf = Buffer.alloc(0);
  private handshakeWaiter: ((err?: Error) => void) | null = null;
  response: HttpResponse | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onTcpClose('FIN'));
    socket.on('error', (err: NodeJS.ErrnoException) => this.onTcpClose(err.code ?? err.message));
    socket.on('close', () => this.onTcpClose('closed'));
  }

  /** Opens TCP only; no handshake. */
  static async open(target: TargetAddress, timeoutMs = WAIT_MS): Promise<RawClient> {
    const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`TCP connect to ${target.host}:${target.port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return new RawClient(socket);
  }

  /** Opens TCP and performs a valid opening handshake, verifying the 101 response. */
  static async connect(target: TargetAddress, opts: HandshakeOptions = {}): Promise<RawClient> {
    const client = await RawClient.open(target);
    try {
      const key = opts.key ?? randomBytes(16).toString('base64');
      const res = await client.handshake(buildRequest(target, key, opts), opts);
      const problems: string[] = [];
      if (res.status !== 101) problems.push(`status ${res.status}, expected 101`);
      if ((res.headers.get('upgrade') ?? '').toLowerCase() !== 'websocket')
        problems.push(`Upgrade header is ${JSON.stringify(res.headers.get('upgrade'))}`);
      const connection = (res.headers.get('connection') ?? '').toLowerCase().split(/\s*,\s*/);
      if (!connection.includes('upgrade'))
        problems.push(`Connection header is ${JSON.stringify(res.headers.get('connection'))}`);
      if (res.headers.get('sec-websocket-accept') !== acceptFor(key))
        problems.push(
          `Sec-WebSocket-Accept is ${JSON.stringify(res.headers.get('sec-websocket-accept'))}, expected ${acceptFor(key)}`,
        );
      if (res.headers.has('sec-websocket-extensions'))
        problems.push(`extension negotiated without an offer: ${res.headers.get('sec-websocket-extensions')}`);
      if (problems.length) throw new Error(`bad handshake response: ${problems.join('; ')}\n${res.raw}`);
      return client;
    } catch (err) {
      client.destroy();
      throw err;
    }
  }

  /** Sends a raw HTTP request and waits for the response head. */
  async handshake(request: string | Buffer, opts: HandshakeOptions = {}): Promise<HttpResponse> {
    const bytes = Buffer.concat([toBuffer(request), opts.trailing ?? Buffer.alloc(0)]);
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no HTTP response head within ${opts.timeoutMs ?? WAIT_MS} ms; got ${JSON.stringify(this.handshakeBuf.toString('latin1'))}`)),
        opts.timeoutMs ?? WAIT_MS,
      );
      this.handshakeWaiter = (err) => {
        clearTimeout(timer);
        this.handshakeWaiter = null;
        if (err) reject(err);
        else resolve();
      };
    });
    await this.send(bytes, opts.delivery);
    await done;
    return this.response!;
  }

  private onData(chunk: Buffer) {
    if (!this.handshakeDone) {
      this.handshakeBuf = Buffer.concat([this.handshakeBuf, chunk]);
      const end = this.handshakeBuf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.handshakeBuf.subarray(0, end).toString('latin1');
      const rest = this.handshakeBuf.subarray(end + 4);
      this.handshakeDone = true;
      try {
        this.response = { ...parseHttpHead(head), rest };
      } catch (err) {
        this.handshakeWaiter?.(err as Error);
        return;
      }
      this.handshakeWaiter?.();
      if (this.response.status !== 101) return; // the rest is an HTTP body, not frames
      chunk = rest;
    }
    if (this.response && this.response.status !== 101) {
      this.response.rest = Buffer.concat([this.response.rest, chunk]);
      return;
    }
    if (chunk.length === 0) return;
    if (this.rxHead.length < 256) this.rxHead = Buffer.concat([this.rxHead, chunk.subarray(0, 256)]);
    this.rxTotal += chunk.length;
    if (this.closeFrameSeen) {
      this.violation(`server sent ${chunk.length} byte(s) after its close frame: ${hex(chunk)}`);
      return;
    }
    if (this.parserDead) return;
    this.rx.push(chunk);
    this.parse();
  }

  private onTcpClose(how: string) {
    if (!this.handshakeDone) {
      this.handshakeWaiter?.(
        new Error(`connection closed (${how}) before an HTTP response head; got ${JSON.stringify(this.handshakeBuf.toString('latin1'))}`),
      );
    }
    if (this.tcpClosed) return;
    this.tcpClosed = true;
    if (this.rx.length && !this.parserDead)
      this.violation(`connection closed with ${this.rx.length} byte(s) of an incomplete frame: ${hex(this.rx.peek(this.rx.length))}`);
    this.emit({ type: 'tcp-close', how });
  }

  private violation(text: string) {
    this.violations.push(text);
  }

  private emit(e: ServerEvent) {
    this.history.push(e);
    this.queue.push(e);
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private parse() {
    while (!this.parserDead && !this.closeFrameSeen) {
      if (this.rx.length < 2) return;
      const h = this.rx.peek(2);
      const fin = (h[0]! & 0x80) !== 0;
      const rsv = (h[0]! >> 4) & 0x7;
      const opcode = h[0]! & 0x0f;
      const masked = (h[1]! & 0x80) !== 0;
      const len7 = h[1]! & 0x7f;
      const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const headerLen = 2 + extra + (masked ? 4 : 0);
      if (this.rx.length < headerLen) return;
      const header = this.rx.peek(headerLen);
      let length: number;
      if (len7 === 126) {
        length = header.readUInt16BE(2);
        if (length < 126) this.violation(`server used a 16-bit length for ${length} bytes (not minimal)`);
      } else if (len7 === 127) {
        const big = header.readBigUInt64BE(2);
        if (big >= 1n << 63n) {
          this.violation(`server sent a 64-bit length with the most significant bit set: ${hex(header)}`);
          this.parserDead = true;
          return;
        }
        if (big < 65536n) this.violation(`server used a 64-bit length for ${big} bytes (not minimal)`);
        if (big > BigInt(256 * 1024 * 1024)) {
          this.violation(`server announced an absurd frame length ${big}`);
          this.parserDead = true;
          return;
        }
        length = Number(big);
      } else length = len7;
      if (this.rx.length < headerLen + length) return;
      this.rx.take(headerLen);
      let payload = this.rx.take(length);
      const desc = `frame (fin=${fin ? 1 : 0} rsv=${rsv} opcode=${opcode} len=${length}) header ${hex(header)}`;
      if (masked) {
        this.violation(`server sent a masked ${desc}`);
        payload = maskBytes(payload, header.subarray(headerLen - 4));
      }
      if (rsv !== 0) this.violation(`server set reserved bits without an extension: ${desc}`);
      this.onFrame(fin, opcode, payload, desc);
    }
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer, desc: string) {
    if (opcode >= 0x8) {
      if (!fin) this.violation(`server sent a fragmented control ${desc}`);
      if (payload.length > 125) this.violation(`server sent a control frame over 125 bytes: ${desc}`);
    }
    switch (opcode) {
      case OP.TEXT:
      case OP.BINARY:
        if (this.fragment) {
          this.violation(`server started a new message inside a fragmented one: ${desc}`);
        }
        this.fragment = { opcode, parts: [payload], frames: 1 };
        if (fin) this.finishMessage();
        return;
      case OP.CONT:
        if (!this.fragment) {
          this.violation(`server sent a continuation frame with no message started: ${desc}`);
          return;
        }
        this.fragment.parts.push(payload);
        this.fragment.frames++;
        if (fin) this.finishMessage();
        return;
      case OP.PING:
        this.emit({ type: 'ping', data: payload });
        return;
      case OP.PONG:
        this.emit({ type: 'pong', data: payload });
        return;
      case OP.CLOSE: {
        this.closeFrameSeen = true;
        if (this.rx.length)
          this.violation(`server sent ${this.rx.length} byte(s) after its close frame: ${hex(this.rx.peek(this.rx.length))}`);
        let code: number | null = null;
        let reason: Buffer = Buffer.alloc(0);
        if (payload.length === 1) this.violation(`server sent a close frame with a 1-byte payload`);
        if (payload.length >= 2) {
          code = payload.readUInt16BE(0);
          reason = payload.subarray(2);
          if (!VALID_CLOSE_CODE(code)) this.violation(`server sent close code ${code}, which may not be sent`);
          if (!isUtf8(reason)) this.violation(`server sent a close reason that is not UTF-8: ${hex(reason)}`);
        }
        if (this.fragment) {
          this.fragment = null; // an unfinished message is abandoned
        }
        this.emit({ type: 'close', code, reason, payload });
        return;
      }
      default:
        this.violation(`server sent a reserved opcode: ${desc}`);
    }
  }

  private finishMessage() {
    const f = this.fragment!;
    this.fragment = null;
    const data = f.parts.length === 1 ? f.parts[0]! : Buffer.concat(f.parts);
    if (f.opcode === OP.TEXT && !isUtf8(data)) this.violation(`server sent a text message that is not UTF-8`);
    this.emit({ type: 'message', opcode: f.opcode, data, frames: f.frames });
  }

  // ---- sending -------------------------------------------------------------------------------

  /** Writes bytes (or several buffers, concatenated), optionally chopped into chunks. */
  async send(data: Buffer | Buffer[], delivery: Delivery = {}): Promise<void> {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data;
    if (!delivery.chunks) {
      await this.write(bytes);
      return;
    }
    const chunks = splitBytes(bytes, delivery.chunks);
    const delay = delivery.delayMs ?? (chunks.length <= 300 ? 1 : 0);
    for (let i = 0; i < chunks.length; i++) {
      if (this.tcpClosed || this.socket.destroyed) return;
      await this.write(chunks[i]!);
      if (i < chunks.length - 1) await (delay > 0 ? sleep(delay) : yieldLoop());
    }
  }

  private write(bytes: Buffer): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve();
    return new Promise((resolve) => {
      // Errors (EPIPE, ECONNRESET once the server has closed) surface as a tcp-close event.
      this.socket.write(bytes, () => resolve());
    });
  }

  // ---- receiving -----------------------------------------------------------------------------

  /** Next event, or a descriptive error after `timeoutMs`. */
  async next(timeoutMs = WAIT_MS, waitingFor = 'an event'): Promise<ServerEvent> {
    if (this.queue.length) return this.queue.shift()!;
    if (this.tcpClosed) throw this.failure(`waiting for ${waitingFor}, but the connection is already closed`);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve();
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (this.queue.length) return this.queue.shift()!;
    throw this.failure(`timed out after ${timeoutMs} ms waiting for ${waitingFor}`);
  }

  /** An Error describing the failure with everything observed on the connection. */
  failure(what: string): Error {
    const lines = [what];
    lines.push(
      `  events so far: ${this.history.length ? this.history.map((e) => '\n    - ' + describeEvent(e)).join('') : '(none)'}`,
    );
    lines.push(`  bytes received after handshake: ${this.rxTotal}; first: ${hex(this.rxHead, 64)}`);
    if (this.rx.length) lines.push(`  unparsed: ${hex(this.rx.peek(Math.min(this.rx.length, 64)))}`);
    if (this.violations.length) lines.push(`  violations: ${this.violations.join('; ')}`);
    return new Error(lines.join('\n'));
  }

  async expectMessage(opcode: number, data: Bytes, timeoutMs = WAIT_MS): Promise<void> {
    const want = toBuffer(data);
    const kind = opcode === OP.TEXT ? 'text' : 'binary';
    const label = `echo of the ${kind} message (${want.length} bytes)`;
    const e = await this.next(timeoutMs, label);
    if (e.type !== 'message' || e.opcode !== opcode) {
      throw this.failure(`expected ${label}, got ${describeEvent(e)}`);
    }
    if (!e.data.equals(want)) {
      let i = 0;
      while (i < want.length && i < e.data.length && want[i] === e.data[i]) i++;
      throw this.failure(
        `expected ${label}, got ${e.data.length} bytes differing from offset ${i}: expected ${hex(want.subarray(i), 16)}, got ${hex(e.data.subarray(i), 16)}`,
      );
    }
  }

  async expectPong(data: Bytes, timeoutMs = WAIT_MS): Promise<void> {
    const want = toBuffer(data);
    const e = await this.next(timeoutMs, `pong with ${want.length}-byte payload`);
    if (e.type !== 'pong' || !e.data.equals(want)) {
      throw this.failure(`expected pong with payload ${hex(want, 24)}, got ${describeEvent(e)}`);
    }
  }

  /**
   * Next event must be a close frame whose code is in `codes` (`null` in the list accepts an
   * empty close payload).
   */
  async expectClose(codes: (number | null)[], timeoutMs = WAIT_MS): Promise<ServerEvent & { type: 'close' }> {
    const label = `close frame with code ${codes.map((c) => (c === null ? '(none)' : c)).join(' or ')}`;
    const e = await this.next(timeoutMs, label);
    if (e.type !== 'close' || !codes.includes(e.code)) throw this.failure(`expected ${label}, got ${describeEvent(e)}`);
    return e;
  }

  /**
   * The next events must be the echoes of `messages`, in order, and pongs for `pongs`, in order;
   * how the two sequences interleave is free (RFC 6455 does not order a pong relative to data
   * frames that an application sends).
   */
  async expectEchoesAndPongs(
    messages: { opcode: number; data: Bytes }[],
    pongs: Bytes[],
    timeoutMs = WAIT_MS,
  ): Promise<void> {
    let m = 0;
    let p = 0;
    while (m < messages.length || p < pongs.length) {
      const e = await this.next(timeoutMs, `${messages.length - m} more echo(es) and ${pongs.length - p} more pong(s)`);
      if (e.type === 'message' && m < messages.length) {
        const want = messages[m]!;
        if (e.opcode === want.opcode && e.data.equals(toBuffer(want.data))) {
          m++;
          continue;
        }
      }
      if (e.type === 'pong' && p < pongs.length && e.data.equals(toBuffer(pongs[p]!))) {
        p++;
        continue;
      }
      const nextMessage = m < messages.length ? `echo #${m + 1} (${hex(toBuffer(messages[m]!.data), 16)})` : 'no more echoes';
      const nextPong = p < pongs.length ? `pong #${p + 1} (${hex(toBuffer(pongs[p]!), 16)})` : 'no more pongs';
      throw this.failure(`expected ${nextMessage} or ${nextPong}, got ${describeEvent(e)}`);
    }
  }

  /** Next event must be the server closing TCP (FIN or reset), without us closing first. */
  async expectTcpClose(timeoutMs = WAIT_MS): Promise<void> {
    const e = await this.next(timeoutMs, 'the server to close the TCP connection');
    if (e.type !== 'tcp-close') throw this.failure(`expected the server to close TCP, got ${describeEvent(e)}`);
  }

  /**
   * _Fail the WebSocket Connection_ (RFC 6455 7.1.7): a close frame with one of `codes`, then
   * the server closes TCP by itself (it must not wait for our close frame, 7.1.7: "MUST NOT
   * continue to attempt to process data ... including a responding Close frame").
   * `allowDrop` accepts a TCP close without a close frame, for the few cases where the RFC
   * makes the close frame optional (unmasked client frames, 5.1).
   */
  async expectFail(codes: number[], opts: { timeoutMs?: number; allowDrop?: boolean } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? WAIT_MS;
    const label = `close frame with code ${codes.join(' or ')}${opts.allowDrop ? ' (or a TCP close)' : ''}`;
    const e = await this.next(timeoutMs, label);
    if (e.type === 'tcp-close' && opts.allowDrop) return;
    if (e.type !== 'close' || e.code === null || !codes.includes(e.code))
      throw this.failure(`expected ${label}, got ${describeEvent(e)}`);
    await this.expectTcpClose(timeoutMs);
  }

  /**
   * Client-initiated closing handshake: send close(code, reason), the server must answer with
   * a close frame (echoing the code; an empty close is answered with an empty close or 1000)
   * and then close TCP by itself.
   */
  async closeHandshake(code: number | undefined = 1000, reason: Bytes = '', timeoutMs = WAIT_MS): Promise<void> {
    await this.send(close(code, reason));
    await this.expectClose(code === undefined ? [null, 1000] : [code], timeoutMs);
    await this.expectTcpClose(timeoutMs);
  }

  /** After a server-sent close: reply with a close (as a client should) and expect TCP close. */
  async replyCloseAndExpectTcpClose(code: number | undefined, timeoutMs = WAIT_MS): Promise<void> {
    await this.send(close(code));
    await this.expectTcpClose(timeoutMs);
  }

  /** Nothing may arrive for `ms`. */
  async expectSilence(ms: number): Promise<void> {
    await sleep(ms);
    if (this.queue.length) throw this.failure(`expected nothing from the server for ${ms} ms, got ${describeEvent(this.queue[0]!)}`);
  }

  assertNoViolations(): void {
    if (this.violations.length) throw this.failure(`server violated RFC 6455 framing`);
  }

  get closed(): boolean {
    return this.tcpClosed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Runs `fn` with a freshly handshaken client; afterwards checks that the server committed no
 * framing violation, and always destroys the socket.
 */
export async function withClient(
  target: TargetAddress,
  fn: (c: RawClient) => Promise<void>,
  opts: HandshakeOptions = {},
): Promise<void> {
  const c = await RawClient.connect(target, opts);
  try {
    await fn(c);
    // Give trailing bytes (e.g. something after a close frame) a moment to show up.
    if (c.closed) await yieldLoop();
    c.assertNoViolations();
  } finally {
    c.destroy();
  }
}
