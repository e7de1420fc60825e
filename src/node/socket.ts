import type { Duplex } from 'node:stream';
import { Connection, type ConnectionEvents, type ConnectionOptions, type Role } from '../protocol/connection.js';
import { WebSocketError } from '../protocol/errors.js';
import { FrameOutput } from '../protocol/output.js';
import type { Metrics } from './metrics.js';

/** What a `SocketBinding` reports to the layer above (the stream or the event app). */
export interface BindingEvents {
  onMessage(payload: Buffer, isText: boolean): void;
  /** Optional: a message that arrived in pieces (see `ConnectionEvents.onMessageParts`); else joined. */
  onMessageParts?(parts: Buffer[], length: number, isText: boolean): void;
  /** Optional: a ping arrived (answered already unless `autoPong` is false). */
  onPing?(payload: Buffer): void;
  onPong?(payload: Buffer): void;
  /** Called once when the WebSocket connection is over, for whatever reason. */
  onClose(code: number, reason: string, error: WebSocketError | undefined): void;
  /** Optional: the socket has closed (after `onClose`); nothing more will happen. */
  onTransportClosed?(): void;
}

export interface BindingOptions extends ConnectionOptions {
  /**
   * How long to wait, after sending a close frame, for the peer's close frame (and, for a
   * client, for the server to close TCP) before the socket is destroyed. Default 5000 ms.
   */
  closeTimeoutMs?: number;
  /**
   * Where a server connection counts its messages, bytes and close (a client passes none).
   * Frames written with `write` are then whole frames (a server's are).
   */
  metrics?: Metrics | null;
}

export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
const EMPTY = Buffer.alloc(0);
const PAUSED_BY_APP = 1;
const PAUSED_BY_INFLATE = 2;

function lostBeforeWritten(): WebSocketError {
  return new WebSocketError('WS_ERR_CLOSED', 'the connection was lost before the data was written', 1006);
}

/** Pending output above this is written with the socket corked instead of joined first. */
const JOIN_LIMIT = 64 * 1024;

// Output produced while handling one turn of the event loop (every socket read in one poll,
// every promise continuation after them) is held and written once per connection in the
// check phase: one system call per connection per turn instead of one per frame.
let dirty: SocketBinding[] = [];
let spare: SocketBinding[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const bindings = dirty;
  dirty = spare;
  for (let i = 0; i < bindings.length; i++) bindings[i]!.flush();
  bindings.length = 0;
  spare = bindings;
  lastJoinedChunks = null;
  lastJoined = null;
}

// A broadcast hands every receiver the same frame buffers, so consecutive connections in a
// flush often have identical pending lists: the join made for one is written to the next.
let lastJoinedChunks: Buffer[] | null = null;
let lastJoined: Buffer | null = null;

/** `chunks` joined into one buffer of `total` bytes, shared with the previous identical list. */
function join(chunks: Buffer[], total: number): Buffer {
  const previous = lastJoinedChunks;
  if (previous !== null && previous.length === chunks.length) {
    let i = 0;
    while (i < chunks.length && chunks[i] === previous[i]) i++;
    if (i === chunks.length) return lastJoined!;
  }
  const joined = Buffer.concat(chunks, total);
  lastJoinedChunks = chunks;
  lastJoined = joined;
  return joined;
}

// What one connection has to write this turn (encoded by its `Connection`). Only connections
// with output have one, and they are reused, so an idle connection carries a single empty field.
const spareOutputs: FrameOutput[] = [];
const SPARE_OUTPUTS_MAX = 1024;

/** Where the shared socket listeners below find a socket's binding. */
const kBinding = Symbol('humphrey-ws binding');
type BoundSocket = Duplex & { [kBinding]: SocketBinding };

function onSocketData(this: BoundSocket, chunk: Buffer): void {
  const binding = this[kBinding];
  const metrics = binding.metrics;
  if (metrics !== null) metrics.bytesReceived += chunk.length;
  binding.connection.receive(chunk);
}
function onSocketError(this: BoundSocket, error: Error): void {
  this[kBinding].connection.transportClosed(error);
}
function onSocketClose(this: BoundSocket): void {
  this[kBinding].transportGone();
}
function onSocketEnd(this: BoundSocket): void {
  // The peer ended its side. Our side ends after this turn, so that a close reply deferred
  // for a close frame that came just before the end is still written first.
  const binding = this[kBinding];
  setImmediate(() => binding.endTransport());
}

function failWriteCallbacks(callbacks: ((error?: Error | null) => void)[]): void {
  const error = new WebSocketError('WS_ERR_CLOSED', 'the socket closed before the data was written');
  for (let i = 0; i < callbacks.length; i++) callbacks[i]!(error);
}

/**
 * Binds a connected socket (net or tls, after the HTTP upgrade) to a protocol `Connection`:
 * socket bytes go into the connection, the connection's bytes go out through one batched
 * write per event-loop turn. Owns the close timeout and the transport teardown.
 */
export class SocketBinding implements ConnectionEvents {
  readonly socket: Duplex;
  readonly connection: Connection;
  /** The counters of the server this connection belongs to, or null (a client). */
  readonly metrics: Metrics | null;
  private readonly events: BindingEvents;
  private readonly closeTimeoutMs: number;
  /** Output waiting for this turn's flush, if any. */
  private output: FrameOutput | null = null;
  private closeTimer: NodeJS.Timeout | null = null;
  /** Who stopped reading: the app (`pause`) and/or decompression (`holdInput`). */
  private pausedBy = 0;
  private ended = false;
  private finished = false;
  private drainWaiters: (() => void)[] | null = null;
  /** Callbacks of `whenWritten` for the output pending now (lazy). */
  private writeCallbacks: ((error?: Error | null) => void)[] | null = null;
  /** Write callback that re-checks the drain waiters once a flushed chunk has left (lazy). */
  private onWritten: (() => void) | null = null;

  constructor(socket: Duplex, events: BindingEvents, options: BindingOptions) {
    this.socket = socket;
    this.events = events;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    const metrics = (this.metrics = options.metrics ?? null);
    metrics?.opened();
    // Replies to close frames and protocol errors wait for this turn's message handlers.
    this.connection = new Connection(this, {
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      deflate: options.deflate,
      autoPong: options.autoPong,
      generateMask: options.generateMask,
      defer: setImmediate,
    });
    // Shared listeners find the binding on the socket: no closures per connection.
    (socket as BoundSocket)[kBinding] = this;
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('end', onSocketEnd);
    // The socket may have been paused while the upgrade was decided; start reading now.
    socket.resume();
  }

  /** @internal Connection event. */
  onMessage(payload: Buffer, isText: boolean): void {
    const metrics = this.metrics;
    if (metrics !== null) metrics.messagesReceived++;
    this.events.onMessage(payload, isText);
  }

  /** @internal Connection event. */
  onMessageParts(parts: Buffer[], length: number, isText: boolean): void {
    const metrics = this.metrics;
    if (metrics !== null) metrics.messagesReceived++;
    const events = this.events;
    if (events.onMessageParts !== undefined) events.onMessageParts(parts, length, isText);
    else events.onMessage(Buffer.concat(parts, length), isText);
  }

  /** @internal Connection event. */
  onPing(payload: Buffer): void {
    this.events.onPing?.(payload);
  }

  /** @internal Connection event. */
  onPong(payload: Buffer): void {
    this.events.onPong?.(payload);
  }

  /** @internal Connection event. */
  onClose(code: number, reason: string, error: WebSocketError | undefined): void {
    this.handleClose(code, reason, error);
  }

  /** @internal Connection event. */
  closeTransport(): void {
    this.endTransport();
  }

  get role(): Role {
    return this.connection.role;
  }

  /** Bytes written but not yet passed to the kernel (held here or in the socket's buffer). */
  get bufferedAmount(): number {
    const output = this.output;
    return (output === null ? 0 : output.bytes) + this.socket.writableLength + this.connection.pendingOutputBytes;
  }

  /** Feed bytes that arrived with the upgrade request (the `head` buffer). */
  receive(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const metrics = this.metrics;
    if (metrics !== null) metrics.bytesReceived += bytes.length;
    this.connection.receive(bytes);
  }

  /**
   * Queue raw bytes to the socket (kept by reference: do not modify them); they are written in
   * this turn's flush.
   */
  write(bytes: Buffer): void {
    if (this.finished) return;
    const output = this.output ?? this.schedule();
    output.append(bytes);
    // A whole frame (see BindingOptions.metrics): a data message if FIN is set on a data opcode.
    if (this.metrics !== null && (bytes[0]! & 0x88) === 0x80) output.messages++;
  }

  /**
   * @internal Connection event: this turn's output, which the connection encodes its frames
   * into (in order with `write`); null once the socket is gone (nothing more is written).
   */
  turnOutput(): FrameOutput | null {
    if (this.finished) return null;
    return this.output ?? this.schedule();
  }

  private schedule(): FrameOutput {
    const output = (this.output = spareOutputs.pop() ?? new FrameOutput());
    dirty.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
    return output;
  }

  /** Write what is pending now (normally called by the turn's flush). */
  flush(): void {
    const output = this.output;
    if (output === null) return;
    this.output = null;
    const tail = output.end > output.start ? output.out!.subarray(output.start, output.end) : null;
    const chunks = output.chunks;
    const total = output.bytes;
    const messages = output.messages;
    output.clear();
    if (spareOutputs.length < SPARE_OUTPUTS_MAX) spareOutputs.push(output);
    const socket = this.socket;
    const callbacks = this.writeCallbacks;
    if (callbacks !== null) this.writeCallbacks = null;
    if (socket.destroyed) {
      if (callbacks !== null) failWriteCallbacks(callbacks);
      return;
    }
    const metrics = this.metrics;
    if (metrics !== null) {
      metrics.bytesSent += total;
      metrics.messagesSent += messages;
    }
    // Someone waits for the buffered amount to fall: 'drain' alone is not enough (a write
    // that completes at once returns true and never emits it), so be told when this flush
    // has left.
    const waiters = this.drainWaiters;
    let written: ((error?: Error | null) => void) | undefined =
      waiters !== null && waiters.length > 0 ? (this.onWritten ??= () => this.drained()) : undefined;
    if (callbacks !== null) {
      // Told when the last chunk of this flush has left (writes complete in order).
      const drained = written;
      written = (error) => {
        drained?.();
        for (let i = 0; i < callbacks.length; i++) callbacks[i]!(error);
      };
    }
    if (chunks === null) {
      if (tail !== null) socket.write(tail, written);
    } else if (tail === null && chunks.length === 1) {
      socket.write(chunks[0]!, written);
    } else if (total <= JOIN_LIMIT) {
      if (tail !== null) chunks.push(tail);
      socket.write(join(chunks, total), written);
    } else {
      if (tail !== null) chunks.push(tail);
      socket.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) socket.write(chunks[i]!);
      socket.write(chunks[last]!, written);
      socket.uncork();
    }
    if (this.ended) socket.end();
  }

  /**
   * Whether `size` more bytes can be queued with the buffered amount staying within `limit`
   * (always when nothing is buffered). Over it, what this turn has queued is written out first
   * (the kernel takes it at once from a peer that reads), so only bytes the peer really has
   * not taken count: the one case in which a connection is written to twice in a turn.
   */
  hasRoom(size: number, limit: number): boolean {
    let buffered = this.bufferedAmount;
    if (buffered === 0 || buffered + size <= limit) return true;
    this.flush();
    buffered = this.bufferedAmount;
    return buffered === 0 || buffered + size <= limit;
  }

  /**
   * Call `callback` once what was written so far has been handed to the kernel (the socket's
   * write callback for this turn's flush), or with an error if the socket is gone first.
   */
  whenWritten(callback: (error?: Error | null) => void): void {
    if (this.output === null || this.finished) {
      const error = this.finished || this.socket.destroyed ? new WebSocketError('WS_ERR_CLOSED', 'the socket is closed') : null;
      if (error !== null || this.socket.writableLength === 0) process.nextTick(callback, error);
      else this.socket.write(EMPTY, callback);
      return;
    }
    (this.writeCallbacks ??= []).push(callback);
  }

  /**
   * Resolves once the buffered amount is at most `limit`. Rejects with `WS_ERR_CLOSED` if the
   * transport goes away first: the bytes waited for were not all written, and the caller must
   * not be told they were.
   */
  waitForDrain(limit: number): Promise<void> {
    if (this.bufferedAmount <= limit) return Promise.resolve();
    if (this.finished || this.socket.destroyed) return Promise.reject(lostBeforeWritten());
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.finished || this.socket.destroyed) reject(lostBeforeWritten());
        else if (this.bufferedAmount <= limit) resolve();
        else (this.drainWaiters ??= []).push(check);
      };
      const onWritten = (this.onWritten ??= () => this.drained());
      if (this.drainWaiters === null) {
        this.drainWaiters = [];
        this.socket.on('drain', onWritten);
      }
      this.drainWaiters.push(check);
      // Nothing of ours is waiting to be flushed and the socket will not emit 'drain' (its
      // own high-water mark is above `limit`): be told when what it holds has been written.
      if (this.output === null && !this.socket.writableNeedDrain && !this.socket.writableEnded) {
        this.socket.write(EMPTY, onWritten);
      }
    });
  }

  /**
   * Start the close handshake; the socket is destroyed if it does not finish within
   * `timeoutMs` (default: the binding's `closeTimeoutMs`), e.g. a short time for a peer that
   * is already known to be unresponsive.
   */
  close(code?: number, reason?: string, timeoutMs: number = this.closeTimeoutMs): void {
    if (this.connection.state !== 'open') return;
    this.connection.close(code, reason);
    this.startCloseTimer(timeoutMs);
  }

  /** Drop the connection without a close handshake. */
  destroy(error?: Error): void {
    this.connection.transportClosed(error);
    this.socket.destroy();
  }

  /** Stop reading (the app's receive queue is full); reading restarts with `resume`. */
  pause(): void {
    this.pausedBy |= PAUSED_BY_APP;
    this.socket.pause();
  }

  resume(): void {
    this.pausedBy &= ~PAUSED_BY_APP;
    if (this.pausedBy === 0) this.socket.resume();
  }

  /** @internal Connection event: input waits behind a message being decompressed. */
  holdInput(held: boolean): void {
    if (held) {
      this.pausedBy |= PAUSED_BY_INFLATE;
      this.socket.pause();
    } else {
      this.pausedBy &= ~PAUSED_BY_INFLATE;
      if (this.pausedBy === 0) this.socket.resume();
    }
  }

  private drained(): void {
    const waiters = this.drainWaiters;
    if (waiters === null || waiters.length === 0) return;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private handleClose(code: number, reason: string, error: WebSocketError | undefined): void {
    // A client waits for the server to close TCP; give it a bounded time.
    if (!this.finished) this.startCloseTimer();
    this.metrics?.closed(code);
    this.events.onClose(code, reason, error);
  }

  /** @internal Close our side of TCP once what is pending has been written. */
  endTransport(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.output === null && !this.socket.destroyed) this.socket.end();
    this.startCloseTimer();
  }

  private startCloseTimer(timeoutMs: number = this.closeTimeoutMs): void {
    if (this.closeTimer !== null || this.finished) return;
    this.closeTimer = setTimeout(() => {
      this.connection.transportClosed(
        new WebSocketError('WS_ERR_CLOSE_TIMEOUT', `close handshake not completed within ${timeoutMs} ms`, 1006),
      );
      this.socket.destroy();
    }, timeoutMs);
    this.closeTimer.unref();
  }

  /** @internal */
  transportGone(): void {
    this.finished = true;
    this.output = null;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    const callbacks = this.writeCallbacks;
    this.writeCallbacks = null;
    if (callbacks !== null) failWriteCallbacks(callbacks);
    this.connection.transportClosed();
    this.drained();
    this.events.onTransportClosed?.();
  }
}
