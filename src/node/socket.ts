import type { Duplex } from 'node:stream';
import { Connection, type ConnectionEvents, type ConnectionOptions, type Role } from '../protocol/connection.js';
import { WebSocketError } from '../protocol/errors.js';

/** What a `SocketBinding` reports to the layer above (the stream or the event app). */
export interface BindingEvents {
  onMessage(payload: Buffer, isText: boolean): void;
  onPong?(payload: Buffer): void;
  /** Called once when the WebSocket connection is over, for whatever reason. */
  onClose(code: number, reason: string, error: WebSocketError | undefined): void;
}

export interface BindingOptions extends ConnectionOptions {
  /**
   * How long to wait, after sending a close frame, for the peer's close frame (and, for a
   * client, for the server to close TCP) before the socket is destroyed. Default 5000 ms.
   */
  closeTimeoutMs?: number;
}

export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
const EMPTY = Buffer.alloc(0);
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
}

/**
 * Binds a connected socket (net or tls, after the HTTP upgrade) to a protocol `Connection`:
 * socket bytes go into the connection, the connection's bytes go out through one batched
 * write per event-loop turn. Owns the close timeout and the transport teardown.
 */
const kBinding = Symbol('humphrey-ws binding');
type BoundSocket = Duplex & { [kBinding]: SocketBinding };

function onSocketData(this: BoundSocket, chunk: Buffer): void {
  this[kBinding].connection.receive(chunk);
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

export class SocketBinding implements ConnectionEvents {
  readonly socket: Duplex;
  readonly connection: Connection;
  private readonly events: BindingEvents;
  private readonly closeTimeoutMs: number;
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  private closeTimer: NodeJS.Timeout | null = null;
  private ended = false;
  private finished = false;
  private drainWaiters: (() => void)[] | null = null;
  /** Write callback that re-checks the drain waiters once a flushed chunk has left (lazy). */
  private onWritten: (() => void) | null = null;

  constructor(socket: Duplex, events: BindingEvents, options: BindingOptions) {
    this.socket = socket;
    this.events = events;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    // Replies to close frames and protocol errors wait for this turn's message handlers.
    this.connection = new Connection(this, { role: options.role, maxMessageSize: options.maxMessageSize, defer: setImmediate });
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
    this.events.onMessage(payload, isText);
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
    return this.pendingBytes + this.socket.writableLength;
  }

  /** Feed bytes that arrived with the upgrade request (the `head` buffer). */
  receive(bytes: Buffer): void {
    if (bytes.length > 0) this.connection.receive(bytes);
  }

  /** Queue raw bytes to the socket; they are written in this turn's flush. */
  write(bytes: Buffer): void {
    if (this.finished) return;
    if (this.pending === null) {
      this.pending = [bytes];
      dirty.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    } else {
      this.pending.push(bytes);
    }
    this.pendingBytes += bytes.length;
  }

  /** Write what is pending now (normally called by the turn's flush). */
  flush(): void {
    const chunks = this.pending;
    if (chunks === null) return;
    const total = this.pendingBytes;
    this.pending = null;
    this.pendingBytes = 0;
    const socket = this.socket;
    if (socket.destroyed) return;
    // Someone waits for the buffered amount to fall: 'drain' alone is not enough (a write
    // that completes at once returns true and never emits it), so be told when this flush
    // has left.
    const waiters = this.drainWaiters;
    const written = waiters !== null && waiters.length > 0 ? (this.onWritten ??= () => this.drained()) : undefined;
    if (chunks.length === 1) {
      socket.write(chunks[0]!, written);
    } else if (total <= JOIN_LIMIT) {
      socket.write(Buffer.concat(chunks, total), written);
    } else {
      socket.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) socket.write(chunks[i]!);
      socket.write(chunks[last]!, written);
      socket.uncork();
    }
    if (this.ended) socket.end();
  }

  /** Resolves once the buffered amount is at most `limit` (or the socket is gone). */
  waitForDrain(limit: number): Promise<void> {
    if (this.bufferedAmount <= limit || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.bufferedAmount <= limit || this.socket.destroyed) resolve();
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
      if (this.pending === null && !this.socket.writableNeedDrain && !this.socket.writableEnded) {
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

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
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
    this.events.onClose(code, reason, error);
  }

  /** Close our side of TCP once what is pending has been written. */
  /** @internal */
  endTransport(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.pending === null && !this.socket.destroyed) this.socket.end();
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
    this.pending = null;
    this.pendingBytes = 0;
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.connection.transportClosed();
    this.drained();
  }
}
