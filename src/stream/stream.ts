import type { Socket } from 'node:net';
import type { DeflateAgreement } from '../protocol/deflate/negotiate.js';
import { Duplex } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import { WebSocketError } from '../protocol/errors.js';
import { isValidCloseCode } from '../protocol/frame.js';
import { isBlob, Message, toBuffer, type BinaryPayload, type MessageLike } from '../message.js';
import { SocketBinding, type BindingOptions } from '../node/socket.js';
import { formatAddress } from '../node/address.js';
import type { Metrics } from '../node/metrics.js';
import { ReceiveQueue } from '../util/queue.js';

/** How a connection ended. */
export interface CloseInfo {
  /** The close code received (1005 when the peer sent none, 1006 when there was no close frame). */
  code: number;
  reason: string;
  /** True when the close handshake completed without a protocol or transport error. */
  wasClean: boolean;
  /** The error that ended the connection, if any. */
  error?: WebSocketError;
}

export interface StreamOptions extends Omit<BindingOptions, 'role' | 'deflate' | 'metrics'> {
  /**
   * `send` resolves at once while at most this many bytes are waiting to be written, and
   * otherwise waits until the socket has drained below it. Default 64 KiB.
   */
  highWaterMark?: number;
  /**
   * Received messages not yet taken by `recv` are held up to this many bytes; past it the
   * socket stops reading until the handler catches up (TCP then slows the peer). Default 1 MiB.
   */
  maxQueuedBytes?: number;
}

const RESOLVED = Promise.resolve();
const noop = (): void => {};

/** A promise that rejects with `error` without counting as unhandled if nobody awaits it. */
function handledRejection(error: Error): Promise<never> {
  return handled(Promise.reject(error));
}

/** `promise`, marked so that its rejection does not count as unhandled if nobody awaits it. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(noop);
  return promise;
}

/**
 * One WebSocket connection, read and written like a stream: the same object on the server
 * (handed to a `websocketHandler`) and on the client (from `connect`).
 */
export class WebSocketStream implements AsyncIterable<Message> {
  /** The remote address as `host:port` (IPv6 hosts in brackets). */
  readonly peerAddr: string;
  /** The raw socket (net.Socket or tls.TLSSocket). Reading from it directly breaks the stream. */
  readonly inner: Socket;
  /** The subprotocol agreed in the handshake, if any. */
  readonly protocol: string | undefined;
  /**
   * The upgrade request's method, URL and headers (server side). Only these are kept, not the
   * `IncomingMessage`, so an idle connection holds as little as possible.
   */
  readonly request: UpgradeRequestInfo | undefined;
  /** Per-connection data set at upgrade time (server side), e.g. by an `onUpgrade` hook. */
  data: unknown;

  private readonly binding: SocketBinding;
  private readonly highWaterMark: number;
  private readonly maxQueuedBytes: number;
  // Received messages not taken yet; allocated when first needed.
  private queue: ReceiveQueue<Message> | null = null;
  // The pending `recv` (or iterator step), kept in fields rather than an object of its own.
  private waiterPromise: Promise<never> | null = null;
  private waiterResolve: ((value: unknown) => void) | null = null;
  private waiterReject: ((error: Error) => void) | null = null;
  private waiterIterates = false;
  private closeInfo: CloseInfo | null = null;
  /** The last send queued behind a Blob being read, while there is one. */
  private sendChain: Promise<void> | null = null;
  private closedPromise: Promise<CloseInfo> | null = null;
  private resolveClosed: ((info: CloseInfo) => void) | null = null;

  /** @internal Use `connect` or a `websocketHandler`. */
  constructor(
    socket: Socket,
    head: Buffer,
    role: 'server' | 'client',
    options: StreamOptions,
    extra: { protocol?: string | undefined; request?: UpgradeRequestInfo | undefined; data?: unknown; deflate?: DeflateAgreement | null; metrics?: Metrics } = {},
  ) {
    this.inner = socket;
    this.peerAddr = formatAddress(socket.remoteAddress, socket.remotePort);
    this.protocol = extra.protocol;
    this.request = extra.request;
    this.data = extra.data;
    this.highWaterMark = options.highWaterMark ?? 64 * 1024;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
    this.binding = new SocketBinding(socket, this, { role, maxMessageSize: options.maxMessageSize, closeTimeoutMs: options.closeTimeoutMs, deflate: extra.deflate ?? null, metrics: extra.metrics ?? null });
    this.binding.receive(head);
  }

  /** Settles once the connection is closed; never rejects. */
  get closed(): Promise<CloseInfo> {
    if (this.closedPromise === null) {
      this.closedPromise = this.closeInfo !== null
        ? Promise.resolve(this.closeInfo)
        : new Promise((resolve) => (this.resolveClosed = resolve));
    }
    return this.closedPromise;
  }

  /** `'open'`, `'closing'` (a close frame was sent) or `'closed'`. */
  get readyState(): 'open' | 'closing' | 'closed' {
    return this.closeInfo !== null ? 'closed' : this.binding.connection.state;
  }

  /** Bytes accepted by `send` that have not reached the kernel yet. */
  get bufferedAmount(): number {
    return this.binding.bufferedAmount;
  }

  /**
   * The next message. Rejects with `WS_ERR_CLOSED` (its `closeCode` set) once the connection
   * is closed and every message received before the close has been taken. Calling it again
   * while a call is still waiting returns the same promise (the message is delivered once).
   */
  recv(): Promise<Message> {
    const message = this.take();
    if (message !== undefined) return Promise.resolve(message);
    if (this.closeInfo !== null) return Promise.reject(this.closedError());
    // A second call while one is waiting gets the same promise, so `Promise.race` loops work.
    if (this.waiterPromise !== null) {
      return this.waiterIterates ? this.waiterPromise.then(valueOf, (error) => this.rethrowAsClosed(error)) : this.waiterPromise;
    }
    return this.wait(false);
  }

  /** @internal One step of async iteration. */
  nextResult(): Promise<IteratorResult<Message, undefined>> {
    const message = this.take();
    if (message !== undefined) return Promise.resolve({ value: message, done: false });
    const info = this.closeInfo;
    if (info !== null) return info.error ? Promise.reject(info.error) : Promise.resolve(DONE);
    if (this.waiterPromise !== null) {
      return this.waiterIterates ? this.waiterPromise : this.waiterPromise.then(stepOf, () => this.endOfIteration());
    }
    return this.wait(true);
  }

  private wait(iterates: boolean): Promise<never> {
    const promise = new Promise<never>((resolve, reject) => {
      this.waiterResolve = resolve as (value: unknown) => void;
      this.waiterReject = reject;
    });
    this.waiterPromise = promise;
    this.waiterIterates = iterates;
    return promise;
  }

  private endOfIteration(): IteratorResult<Message, undefined> {
    const error = this.closeInfo?.error;
    if (error) throw error;
    return DONE;
  }

  private rethrowAsClosed(error: unknown): never {
    throw this.closeInfo !== null ? this.closedError() : error;
  }

  /**
   * A message if one has arrived, `undefined` if none has yet; throws `WS_ERR_CLOSED` once the
   * connection is closed and nothing is left to take.
   */
  tryRecv(): Message | undefined {
    const message = this.take();
    if (message === undefined && this.closeInfo !== null) throw this.closedError();
    return message;
  }

  /** Messages until the connection closes. Ends after a clean close; throws after a failure. */
  [Symbol.asyncIterator](): AsyncIterator<Message, undefined> {
    return new MessageIterator(this);
  }

  /**
   * Send a message: a `Message`, a string (text), or bytes (binary): a Buffer, any TypedArray,
   * a DataView, an ArrayBuffer, a SharedArrayBuffer, or a `Blob` (read first; messages sent
   * after it wait for it, so order is kept). The frame goes into this turn's output for the
   * socket; the promise then resolves at once while the buffered amount is at most the
   * high-water mark, otherwise once the socket has drained below it. It rejects with
   * `WS_ERR_INVALID_ARGUMENT` for any other payload (nothing is written, the connection stays
   * usable) and with `WS_ERR_CLOSED` if the connection is closing or closed, or is lost before
   * the bytes it waited for were written. Such rejections never count as unhandled.
   */
  send(message: MessageLike | Blob): Promise<void> {
    if (this.sendChain !== null || isBlob(message)) return this.sendInOrder(message);
    return this.sendNow(message);
  }

  private sendNow(message: MessageLike): Promise<void> {
    const connection = this.binding.connection;
    try {
      if (typeof message === 'string') connection.send(Buffer.from(message, 'utf8'), true);
      else if (message instanceof Message) {
        // A Message sent to many connections (a broadcast loop) is framed once, on its second send.
        // (Not when it is to be compressed: that goes through this connection's compressor.)
        const frame = connection.role === 'server' && !connection.compresses(message.byteLength) ? message.frameForServer() : null;
        if (frame !== null) {
          connection.sendShared(frame);
        } else {
          const parts = message.unjoinedParts();
          if (parts !== undefined) connection.sendParts(parts, message.isText);
          else connection.send(message.bytes(), message.isText);
        }
      } else connection.send(toBuffer(message), false);
    } catch (error) {
      return handledRejection(error as Error);
    }
    if (this.binding.bufferedAmount <= this.highWaterMark) return RESOLVED;
    return handled(this.binding.waitForDrain(this.highWaterMark));
  }

  /** Sends queued behind a Blob being read: each runs when the one before it has. */
  private sendInOrder(message: MessageLike | Blob): Promise<void> {
    const previous = this.sendChain ?? RESOLVED;
    const result = previous.then(async () => {
      const payload = isBlob(message) ? Buffer.from(await message.arrayBuffer()) : message;
      return this.sendNow(payload);
    });
    // The caller gets the outcome; the chain goes on after a failure.
    const tail: Promise<void> = result.then(noop, noop);
    this.sendChain = tail;
    void tail.then(() => {
      if (this.sendChain === tail) this.sendChain = null;
    });
    return handled(result);
  }

  /**
   * Send one fragment of a message; the first fragment's kind (text or binary) is the
   * message's, `fin` ends it. For streaming a message whose size is not known up front.
   * Payloads and failures as for `send` (a Blob is not taken here).
   */
  sendFragment(payload: BinaryPayload | string, fin: boolean, isText = typeof payload === 'string'): Promise<void> {
    try {
      const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : toBuffer(payload);
      this.binding.connection.sendFragment(bytes, isText, fin);
    } catch (error) {
      return handledRejection(error as Error);
    }
    return handled(this.binding.waitForDrain(this.highWaterMark));
  }

  /** Send a ping (the peer's pong is answered automatically by its side). */
  ping(payload: BinaryPayload | string = Buffer.alloc(0)): Promise<void> {
    try {
      this.binding.connection.ping(typeof payload === 'string' ? Buffer.from(payload) : toBuffer(payload));
    } catch (error) {
      return handledRejection(error as Error);
    }
    return RESOLVED;
  }

  /**
   * Start the close handshake (default code 1000) and resolve when the connection is closed.
   * Safe to call more than once.
   */
  close(code = 1000, reason = ''): Promise<CloseInfo> {
    if (!(code === 1000 || isValidCloseCode(code))) {
      return handledRejection(new WebSocketError('WS_ERR_INVALID_CLOSE_CODE', `close code ${code} cannot be sent`));
    }
    try {
      this.binding.close(code, reason);
    } catch (error) {
      return handledRejection(error as Error);
    }
    return this.closed;
  }

  /**
   * @internal For a per-connection heartbeat: this connection is being closed because it
   * missed its heartbeat; counted in its route's metrics (a client has none).
   */
  countHeartbeatTimeout(): void {
    const metrics = this.binding.metrics;
    if (metrics !== null) metrics.heartbeatTimeouts++;
  }

  /** Drop the TCP connection at once, without a close handshake. */
  terminate(): void {
    this.binding.destroy();
  }

  /**
   * A Node `Duplex` over this stream: what is written to it is sent as binary messages, what
   * is read from it is the bytes of each received message. Ending it closes the WebSocket.
   * The readable side ends after a clean close and is destroyed with the error after a
   * failure (e.g. `WS_ERR_CONNECTION_LOST`), so `pipeline` rejects then.
   */
  toDuplex(): Duplex {
    const duplex: Duplex = new Duplex({
      read: () => {
        this.recv().then(
          (message) => duplex.push(message.bytes()),
          () => {
            // Like async iteration: a clean close ends the readable side, a failure errors it.
            const failure = this.closeInfo?.error;
            if (failure) duplex.destroy(failure);
            else duplex.push(null);
          },
        );
      },
      write: (chunk: Buffer, _encoding, callback) => {
        this.send(chunk).then(() => callback(), callback);
      },
      final: (callback) => {
        this.close().then(() => callback(), callback);
      },
      destroy: (error, callback) => {
        if (this.readyState === 'open') this.binding.close(error ? 1011 : 1000);
        callback(error);
      },
    });
    return duplex;
  }

  private take(): Message | undefined {
    const queue = this.queue;
    if (queue === null) return undefined;
    const message = queue.shift();
    if (queue.resumeDue(this.maxQueuedBytes)) this.binding.resume();
    return message;
  }

  /** @internal Binding event: a message arrived. */
  onMessage(payload: Buffer, isText: boolean): void {
    this.received(Message.fromReceived(payload, isText));
  }

  /** @internal Binding event: a message arrived in pieces (kept as they are until needed). */
  onMessageParts(parts: Buffer[], _length: number, isText: boolean): void {
    this.received(Message.fromReceivedParts(parts, isText));
  }

  private received(message: Message): void {
    const resolve = this.waiterResolve;
    if (resolve !== null) {
      const iterates = this.waiterIterates;
      this.clearWaiter();
      resolve(iterates ? { value: message, done: false } : message);
      return;
    }
    if ((this.queue ??= new ReceiveQueue()).push(message, message.byteLength, this.maxQueuedBytes)) this.binding.pause();
  }

  /** @internal Binding event: the connection is over. */
  onClose(code: number, reason: string, error: WebSocketError | undefined): void {
    const info: CloseInfo = { code, reason, wasClean: error === undefined };
    if (error) info.error = error;
    this.closeInfo = info;
    this.resolveClosed?.(info);
    this.resolveClosed = null;
    const resolve = this.waiterResolve;
    const reject = this.waiterReject;
    if (resolve === null || reject === null) return;
    const iterates = this.waiterIterates;
    this.clearWaiter();
    if (!iterates) reject(this.closedError());
    else if (error) reject(error);
    else resolve(DONE);
  }

  private clearWaiter(): void {
    this.waiterPromise = null;
    this.waiterResolve = null;
    this.waiterReject = null;
  }

  private closedError(): WebSocketError {
    const info = this.closeInfo!;
    return new WebSocketError('WS_ERR_CLOSED', `connection closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`, info.code);
  }
}

// The binding calls these on the stream. A `ws` habit such as `stream.onMessage = fn` must not
// silently take a stream over (recv() would then never resolve): assigning them throws a
// TypeError instead, at no cost per connection.
for (const name of ['onMessage', 'onMessageParts', 'onClose', 'onPong', 'nextResult']) {
  if (Object.prototype.hasOwnProperty.call(WebSocketStream.prototype, name)) {
    Object.defineProperty(WebSocketStream.prototype, name, { writable: false, enumerable: false, configurable: false });
  }
}

/** What a server-side stream keeps of its upgrade request. */
export interface UpgradeRequestInfo {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

const DONE: IteratorResult<Message, undefined> = Object.freeze({ value: undefined, done: true });
const valueOf = (result: IteratorResult<Message, undefined>): Message => result.value!;
const stepOf = (message: Message): IteratorResult<Message, undefined> => ({ value: message, done: false });

/** The async iterator of a stream: one small object per loop, one promise per step. */
class MessageIterator implements AsyncIterator<Message, undefined> {
  constructor(private readonly stream: WebSocketStream) {}

  next(): Promise<IteratorResult<Message, undefined>> {
    return this.stream.nextResult();
  }

  return(): Promise<IteratorResult<Message, undefined>> {
    return Promise.resolve(DONE);
  }
}
