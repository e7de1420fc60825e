import { EventEmitter } from 'node:events';
import type { ClientRequest } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketError } from '../../protocol/errors.js';
import { encodeShared, isValidCloseCode, Opcode, type SharedFrame } from '../../protocol/frame.js';
import { SocketBinding, type BindingEvents } from '../../node/socket.js';
import type { DeflateAgreement } from '../../protocol/deflate/negotiate.js';
import { toWsError, isTransportEnd } from './errors.js';
import { installEventTarget, type WebSocketEventTarget } from './event-target.js';
import { startClientHandshake, type ClientOptions } from './client.js';
import type { WebSocketServer } from './server.js';
import type { createWebSocketStream } from './stream.js';

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSING = 2;
export const CLOSED = 3;
const STATE_NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const BINARY_TYPES = ['nodebuffer', 'arraybuffer', 'fragments', 'blob'];
export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';

/** `ws`'s default `maxPayload`: 100 MiB. */
export const DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;
/** `ws`'s default `closeTimeout`: 30 s. */
export const DEFAULT_CLOSE_TIMEOUT = 30_000;
export const EMPTY = Buffer.alloc(0);

/** Settings a connection reads, shared by every connection of one server. */
export interface ConnectionSettings {
  isServer: boolean;
  autoPong: boolean;
  allowSynchronousEvents: boolean;
  maxPayload: number;
  closeTimeout: number;
  generateMask: ((mask: Buffer) => void) | undefined;
}

export interface SendOptions {
  /** Send as a binary frame. Default: true unless `data` is a string. */
  binary?: boolean;
  /** Compress (ignored: a message at or above `threshold` bytes is compressed when permessage-deflate was agreed). */
  compress?: boolean;
  /** Whether this is the last fragment of the message. Default true. */
  fin?: boolean;
  /** Mask the frame (ignored: a client always masks, a server never does). */
  mask?: boolean;
}

type Callback = (error?: Error | null) => void;
type Sendable = string | Buffer | ArrayBuffer | ArrayBufferView | Blob | number | readonly number[];

const RESOLVED = Promise.resolve();
const settingsByOptions = new WeakMap<object, ConnectionSettings>();

/** The settings for `options` (server or client), made once per options object. */
export function settingsFor(options: Record<string, unknown> | undefined, isServer: boolean): ConnectionSettings {
  const key = options ?? settingsByOptions;
  let settings = settingsByOptions.get(key);
  if (settings === undefined || settings.isServer !== isServer) {
    const maxPayload = options?.maxPayload === undefined ? DEFAULT_MAX_PAYLOAD : Number(options.maxPayload);
    settings = {
      isServer,
      autoPong: options?.autoPong !== false,
      allowSynchronousEvents: options?.allowSynchronousEvents !== false,
      // 0 means no limit, as in ws.
      maxPayload: maxPayload > 0 ? maxPayload : Number.MAX_SAFE_INTEGER,
      closeTimeout: typeof options?.closeTimeout === 'number' ? options.closeTimeout : DEFAULT_CLOSE_TIMEOUT,
      generateMask: typeof options?.generateMask === 'function' ? (options.generateMask as (mask: Buffer) => void) : undefined,
    };
    settingsByOptions.set(key, settings);
  }
  return settings;
}

function notOpen(state: number): Error {
  return new Error(`WebSocket is not open: readyState ${state} (${STATE_NAMES[state]})`);
}

function toBuffer(data: Exclude<Sendable, Blob> | undefined): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (data === undefined) return EMPTY;
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data as readonly number[]);
}

function byteLengthOf(data: unknown): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  if (typeof Blob !== 'undefined' && data instanceof Blob) return data.size;
  return 0;
}

// `wss.clients.forEach((c) => c.send(data))` sends the same `data` to every connection in one
// synchronous run: the frame is encoded on the second send and the same bytes are handed to
// every later connection (whose identical output the binding then writes from one buffer).
// The cache lives until the current run of microtasks ends, so a buffer changed later is
// framed anew.
let cachedData: unknown = null;
let cachedPayload: Buffer | null = null;
let cachedOpcode = 0;
let cachedFrame: SharedFrame | null = null;
let cacheClearScheduled = false;
function clearFrameCache(): void {
  cacheClearScheduled = false;
  cachedData = null;
  cachedPayload = null;
  cachedFrame = null;
}

/**
 * `ws`'s `WebSocket`: a client (`new WebSocket(url, protocols, options)`) or, made by a
 * `WebSocketServer`, the server's side of one connection. Events: `open`, `message (data,
 * isBinary)`, `ping (data)`, `pong (data)`, `close (code, reason: Buffer)`, `error (error)`,
 * and for a client `upgrade (response)`, `unexpected-response (request, response)`,
 * `redirect (url, request)`.
 */
export class WebSocket extends EventEmitter implements BindingEvents {
  declare static WebSocket: typeof WebSocket;
  declare static WebSocketServer: typeof WebSocketServer;
  declare static Server: typeof WebSocketServer;
  declare static createWebSocketStream: typeof createWebSocketStream;
  declare static readonly CONNECTING: 0;
  declare static readonly OPEN: 1;
  declare static readonly CLOSING: 2;
  declare static readonly CLOSED: 3;
  declare readonly CONNECTING: 0;
  declare readonly OPEN: 1;
  declare readonly CLOSING: 2;
  declare readonly CLOSED: 3;

  /** @internal */ state: number = CONNECTING;
  /** @internal */ binding: SocketBinding | null = null;
  /** @internal */ settings: ConnectionSettings;
  /** @internal */ protocolName = '';
  /** @internal */ address = '';
  /** @internal The client's handshake request, while it runs. */
  request: ClientRequest | null = null;
  /** @internal Redirects followed so far. */
  redirects = 0;
  /** @internal The server that tracks this connection in its `clients`, until it closes. */
  tracker: { clientGone(ws: WebSocket): void } | null = null;
  private binaryKind: BinaryType = 'nodebuffer';
  /** A message sent with `fin: false` is still open: later sends continue it. */
  private fragmenting = false;
  private paused = false;
  private closeCode = 1006;
  private closeReason: Buffer = EMPTY;
  private closeFrameReceived = false;
  /** ws reports one error per connection at most. */
  private errorEmitted = false;
  /** Bytes given to `send` after the connection closed (ws counts them as buffered). */
  private bufferedAfterClose = 0;
  /** The last send waiting for a Blob to be read (later sends queue behind it), if any. */
  private pendingSends: Promise<void> | null = null;
  /** Messages waiting for their own turn when `allowSynchronousEvents` is false (lazy). */
  private deferredEvents: (() => void)[] | null = null;

  constructor(address: string | URL | null, protocols?: string | string[] | ClientOptions | null, options?: ClientOptions) {
    super();
    if (address === null) {
      this.settings = settingsFor(protocols as Record<string, unknown> | undefined ?? options as Record<string, unknown>, true);
      return;
    }
    if (protocols === undefined) {
      protocols = [];
    } else if (!Array.isArray(protocols)) {
      if (typeof protocols === 'object' && protocols !== null) {
        options = protocols as ClientOptions;
        protocols = [];
      } else {
        protocols = [protocols as string];
      }
    }
    this.settings = settingsFor(options as Record<string, unknown> | undefined, false);
    startClientHandshake(this, address, protocols as unknown[], options ?? {});
  }

  /** How binary messages are given to `message` listeners. Default `'nodebuffer'`. */
  get binaryType(): BinaryType {
    return this.binaryKind;
  }

  set binaryType(type: BinaryType) {
    if (BINARY_TYPES.includes(type)) this.binaryKind = type;
  }

  /** Bytes sent but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return (this.binding === null ? 0 : this.binding.bufferedAmount) + this.bufferedAfterClose;
  }

  /** The extensions agreed: `'permessage-deflate'` or `''`. */
  get extensions(): string {
    return this.binding !== null && this.binding.connection.deflate !== null ? 'permessage-deflate' : '';
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** The subprotocol agreed, or `''`. */
  get protocol(): string {
    return this.protocolName;
  }

  get readyState(): number {
    return this.state;
  }

  /** The URL (client side), else `''`... as ws: undefined on the server side. */
  get url(): string | undefined {
    return this.address === '' ? undefined : this.address;
  }

  /** @internal Whether both close frames were exchanged (for `CloseEvent.wasClean`). */
  get cleanlyClosed(): boolean {
    return this.closeFrameReceived;
  }

  /**
   * @internal Take over an upgraded socket: the handshake is done. Bytes that came with the
   * upgrade (`head`) are read first, after the caller has attached its listeners.
   */
  attachSocket(socket: Duplex, head: Buffer, deflate: DeflateAgreement | null): void {
    const settings = this.settings;
    const netSocket = socket as Duplex & { setTimeout?: (ms: number) => void; setNoDelay?: (on: boolean) => void };
    netSocket.setTimeout?.(0);
    netSocket.setNoDelay?.(true);
    if (head.length > 0) socket.unshift(head);
    this.binding = new SocketBinding(socket, this, {
      role: settings.isServer ? 'server' : 'client',
      maxMessageSize: settings.maxPayload,
      closeTimeoutMs: settings.closeTimeout,
      autoPong: settings.autoPong,
      generateMask: settings.generateMask,
      deflate,
    });
    this.state = OPEN;
  }

  /** @internal The socket, while there is one. */
  get socket(): Duplex | null {
    return this.binding === null ? null : this.binding.socket;
  }

  /**
   * The raw socket, under the name `ws` gives it (code written for `ws` reads e.g.
   * `ws._socket.remoteAddress`). Reading from or writing to it bypasses the protocol.
   */
  get _socket(): Duplex | null {
    return this.socket;
  }

  /** The handshake request while it runs (`ws`'s name for it), else null. */
  get _req(): ClientRequest | null {
    return this.request;
  }

  /** Redirects followed (`ws`'s name for the count). */
  get _redirects(): number {
    return this.redirects;
  }

  /**
   * Send a message; `cb(error)` is called once the data has been written to the socket, or
   * with the error that kept it from being written.
   */
  send(data?: Sendable, options?: SendOptions | Callback, cb?: Callback): void {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    if (typeof data === 'number') data = data.toString();
    if (this.state === CONNECTING) throw notOpen(CONNECTING);
    if (this.state !== OPEN) {
      this.sendAfterClose(data, cb);
      return;
    }
    const binary = options?.binary ?? typeof data !== 'string';
    const fin = options?.fin ?? true;
    if (typeof Blob !== 'undefined' && data instanceof Blob) {
      this.sendBlob(data, binary, fin, cb);
      return;
    }
    if (this.pendingSends !== null) {
      const value = data;
      this.afterPending(RESOLVED, () => this.sendNow(value as Exclude<Sendable, Blob | number>, binary, fin, cb, true));
      return;
    }
    this.sendNow(data as Exclude<Sendable, Blob | number>, binary, fin, cb);
  }

  private sendNow(data: Exclude<Sendable, Blob | number> | undefined, binary: boolean, fin: boolean, cb: Callback | undefined, queued = false): void {
    const binding = this.binding;
    if (queued) {
      // Queued behind a Blob: it goes out unless the connection went away meanwhile (a close
      // asked for after it waits behind it too).
      if (binding === null || binding.connection.state === 'closed') {
        if (cb !== undefined) cb(new Error('The socket was closed while the blob was being read'));
        return;
      }
    } else if (this.state !== OPEN || binding === null) {
      this.sendAfterClose(data, cb);
      return;
    }
    const connection = binding!.connection;
    const opcode = binary ? Opcode.Binary : Opcode.Text;
    try {
      if (!fin || this.fragmenting) {
        connection.sendFragment(toBuffer(data), !binary, fin);
        this.fragmenting = !fin;
      } else if (connection.role !== 'server' || connection.deflate !== null) {
        // Compressed messages are framed by the connection, in order, one compression each.
        connection.send(toBuffer(data), !binary);
      } else if (data === cachedData && opcode === cachedOpcode && cachedPayload !== null) {
        connection.sendShared((cachedFrame ??= encodeShared(opcode, cachedPayload)));
      } else {
        const payload = toBuffer(data);
        connection.send(payload, !binary);
        cachedData = data;
        cachedPayload = payload;
        cachedOpcode = opcode;
        cachedFrame = null;
        if (!cacheClearScheduled) {
          cacheClearScheduled = true;
          queueMicrotask(clearFrameCache);
        }
      }
    } catch (error) {
      this.sendFailed(error as Error, cb);
      return;
    }
    if (cb !== undefined) binding!.whenWritten(cb);
  }

  private sendFailed(error: Error, cb: Callback | undefined): void {
    if (error instanceof WebSocketError && error.code === 'WS_ERR_CLOSED') {
      if (cb !== undefined) process.nextTick(cb, notOpen(this.state === OPEN ? CLOSING : this.state));
      return;
    }
    throw error;
  }

  /** A Blob is read first; sends made meanwhile wait behind it, so their order is kept. */
  private sendBlob(blob: Blob, binary: boolean, fin: boolean, cb: Callback | undefined): void {
    let bytes: Buffer | null = null;
    let failure: Error | null = null;
    const read = blob.arrayBuffer().then(
      (buffer) => void (bytes = Buffer.from(buffer)),
      (error: Error) => void (failure = error),
    );
    this.afterPending(read, () => {
      if (failure === null) this.sendNow(bytes!, binary, fin, cb, true);
      else this.blobFailed(failure, cb);
    });
  }

  /** A Blob could not be read: as ws, the connection is ended and the error reported once. */
  private blobFailed(error: Error, cb: Callback | undefined): void {
    if (cb !== undefined) cb(error);
    if (this.state === CLOSED || this.binding === null) return;
    this.state = CLOSING;
    this.binding.endTransport();
    if (this.errorEmitted) return;
    this.errorEmitted = true;
    this.emit('error', error);
  }

  /** Run `send` once `ready` has settled and every send queued before it has run. */
  private afterPending(ready: Promise<void>, send: () => void): void {
    const previous = this.pendingSends ?? Promise.resolve();
    const chain = Promise.all([previous, ready]).then(() => {
      send();
      if (this.pendingSends === chain) this.pendingSends = null;
    });
    this.pendingSends = chain;
  }

  private sendAfterClose(data: unknown, cb: Callback | undefined): void {
    this.bufferedAfterClose += byteLengthOf(data);
    if (cb !== undefined) process.nextTick(cb, notOpen(this.state));
  }

  /** Send a ping (at most 125 bytes of data). */
  ping(data?: unknown, mask?: boolean | Callback, cb?: Callback): void {
    this.control(Opcode.Ping, data, mask, cb);
  }

  /** Send a pong (at most 125 bytes of data). */
  pong(data?: unknown, mask?: boolean | Callback, cb?: Callback): void {
    this.control(Opcode.Pong, data, mask, cb);
  }

  private control(opcode: number, data: unknown, mask: boolean | Callback | undefined, cb: Callback | undefined): void {
    if (this.state === CONNECTING) throw notOpen(CONNECTING);
    if (typeof data === 'function') {
      cb = data as Callback;
      data = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
    }
    if (typeof data === 'number') data = data.toString();
    if (this.state !== OPEN || this.binding === null) {
      this.sendAfterClose(data, cb);
      return;
    }
    const payload = data === undefined ? EMPTY : toBuffer(data as Exclude<Sendable, Blob>);
    if (payload.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    try {
      if (opcode === Opcode.Ping) this.binding.connection.ping(payload);
      else this.binding.connection.pong(payload);
    } catch (error) {
      this.sendFailed(error as Error, cb);
      return;
    }
    if (cb !== undefined) this.binding.whenWritten(cb);
  }

  /**
   * Start the closing handshake: `code` one a close frame may carry (1000-1003, 1007-1014,
   * 3000-4999) or none, `reason` at most 123 bytes. The socket is destroyed if the handshake has not finished within `closeTimeout`.
   */
  close(code?: number, reason?: string | Buffer): void {
    if (this.state === CLOSED) return;
    if (this.state === CONNECTING) {
      abortHandshake(this, 'WebSocket was closed before the connection was established');
      return;
    }
    const binding = this.binding;
    // A handshake that failed: its close event is on the way.
    if (binding === null) return;
    if (this.state === CLOSING) {
      // Both close frames have been exchanged: the TCP close can start from our side too.
      if (binding.connection.state === 'closed') binding.endTransport();
      return;
    }
    if (code !== undefined && (typeof code !== 'number' || !isValidCloseCode(code))) {
      throw new TypeError('First argument must be a valid error code number');
    }
    const text = reason === undefined ? '' : typeof reason === 'string' ? reason : reason.toString();
    if (Buffer.byteLength(text) > 123) throw new RangeError('The message must not be greater than 123 bytes');
    this.state = CLOSING;
    const closeNow = (): void => {
      if (binding.connection.state !== 'open') return;
      binding.close(code, code === undefined ? '' : text);
      // Written now rather than at the end of the turn: what was sent before it goes too.
      binding.flush();
    };
    if (this.pendingSends !== null) this.afterPending(RESOLVED, closeNow);
    else closeNow();
  }

  /** Drop the connection at once, without a closing handshake. */
  terminate(): void {
    if (this.state === CLOSED) return;
    if (this.state === CONNECTING) {
      abortHandshake(this, 'WebSocket was closed before the connection was established');
      return;
    }
    if (this.binding === null) return;
    this.state = CLOSING;
    this.binding.destroy();
  }

  /** Stop reading from the socket. */
  pause(): void {
    if (this.state === CONNECTING || this.state === CLOSED) return;
    this.paused = true;
    this.binding!.pause();
  }

  /** Read from the socket again. */
  resume(): void {
    if (this.state === CONNECTING || this.state === CLOSED) return;
    this.paused = false;
    this.binding!.resume();
  }

  /** @internal Binding event. */
  onMessage(payload: Buffer, isText: boolean): void {
    this.deliver(isText || this.binaryKind === 'nodebuffer' ? payload : this.convert([payload], payload.length), isText);
  }

  /** @internal Binding event. */
  onMessageParts(parts: Buffer[], length: number, isText: boolean): void {
    const kind = this.binaryKind;
    this.deliver(isText || kind === 'nodebuffer' ? Buffer.concat(parts, length) : this.convert(parts, length), isText);
  }

  private convert(parts: Buffer[], length: number): ArrayBuffer | Buffer[] | Blob {
    if (this.binaryKind === 'fragments') return parts;
    if (this.binaryKind === 'blob') return new Blob(parts as unknown as BlobPart[]);
    const buffer = new ArrayBuffer(length);
    const view = new Uint8Array(buffer);
    let at = 0;
    for (const part of parts) {
      view.set(part, at);
      at += part.length;
    }
    return buffer;
  }

  private deliver(data: unknown, isText: boolean): void {
    if (this.settings.allowSynchronousEvents) {
      this.emit('message', data, !isText);
      return;
    }
    this.deferEvent(() => this.emit('message', data, !isText));
  }

  /** With `allowSynchronousEvents: false`, one message event per turn of the event loop. */
  private deferEvent(task: () => void): void {
    if (this.deferredEvents !== null) {
      this.deferredEvents.push(task);
      return;
    }
    const queue: (() => void)[] = (this.deferredEvents = [task]);
    const next = (): void => {
      const run = queue.shift();
      if (run === undefined) {
        this.deferredEvents = null;
        return;
      }
      run();
      setImmediate(next);
    };
    setImmediate(next);
  }

  /** @internal Binding event. */
  onPing(payload: Buffer): void {
    this.emit('ping', payload);
  }

  /** @internal Binding event. */
  onPong(payload: Buffer): void {
    this.emit('pong', payload);
  }

  /** @internal Binding event: the WebSocket connection is over; the socket closes next. */
  onClose(code: number, reason: string, error: WebSocketError | undefined): void {
    this.state = CLOSING;
    if (error === undefined) {
      this.closeFrameReceived = true;
      this.closeCode = code;
      this.closeReason = reason === '' ? EMPTY : Buffer.from(reason);
    } else if (!isTransportEnd(error) && !this.errorEmitted) {
      // ws keeps 1006 after a protocol error: it stops reading and sees no close frame.
      this.errorEmitted = true;
      this.emit('error', toWsError(error));
    }
  }

  /** @internal Binding event: the socket has closed. */
  onTransportClosed(): void {
    this.state = CLOSED;
    if (this.tracker !== null) {
      this.tracker.clientGone(this);
      this.tracker = null;
    }
    const deferred = this.deferredEvents;
    if (deferred !== null && deferred.length > 0) {
      // Messages that arrived before the close are delivered before it.
      deferred.push(() => this.emit('close', this.closeCode, this.closeReason));
      return;
    }
    this.emit('close', this.closeCode, this.closeReason);
  }

  /** @internal A client whose handshake failed: `error`, then `close` (1006). */
  failHandshake(error: Error): void {
    this.state = CLOSING;
    this.request = null;
    this.emit('error', error);
    this.state = CLOSED;
    this.emit('close', this.closeCode, this.closeReason);
  }
}

/** End a client's handshake with `message`: the request is aborted, `error` and `close` follow. */
export function abortHandshake(ws: WebSocket, message: string, socket?: Duplex): void {
  ws.state = CLOSING;
  const error = new Error(message);
  Error.captureStackTrace(error, abortHandshake);
  const request = ws.request;
  ws.request = null;
  if (request !== null) {
    (request as ClientRequest & { [kAborted]?: boolean })[kAborted] = true;
    request.destroy();
    // After a complete response the socket may be kept for reuse: it is not reused here.
    if (request.socket && !request.socket.destroyed) request.socket.destroy();
  }
  if (socket !== undefined && !socket.destroyed) socket.destroy();
  process.nextTick(() => ws.failHandshake(error));
}

/** Marks a handshake request this side gave up on (its later errors are not reported). */
export const kAborted = Symbol('humphrey-ws compat aborted');

const constant = { enumerable: true, writable: false, configurable: false };
for (const [index, name] of STATE_NAMES.entries()) {
  Object.defineProperty(WebSocket, name, { ...constant, value: index });
  Object.defineProperty(WebSocket.prototype, name, { ...constant, value: index });
}
for (const name of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url']) {
  const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, name)!;
  Object.defineProperty(WebSocket.prototype, name, { ...descriptor, enumerable: true });
}
installEventTarget(WebSocket.prototype);

// The WHATWG members `installEventTarget` added.
export interface WebSocket extends WebSocketEventTarget {}
