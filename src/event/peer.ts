import type { WebSocketError } from '../protocol/errors.js';
import { Message } from '../message.js';
import type { BindingEvents, SocketBinding } from '../node/socket.js';
import type { ConnectionState } from '../protocol/connection.js';
import type { SharedFrame } from '../protocol/frame.js';
import type { SharedCompression } from '../protocol/deflate/shared.js';
import type { DeflateAgreement } from '../protocol/deflate/negotiate.js';
import type { CloseInfo } from '../stream/stream.js';
import type { HeartbeatMember } from './heartbeat.js';
import type { TopicMember } from './topics.js';
import type { Hub } from './hub.js';
import type { MessageHandler } from './types.js';
import { AsyncStream } from './facades.js';
import { ReceiveQueue } from '../util/queue.js';

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value !== undefined && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * One connection: the binding's event sink, its place in the app's maps, topics and heartbeat,
 * and the per-connection event queue (used only while an async handler is in flight).
 */
export class Peer implements BindingEvents, TopicMember, HeartbeatMember {
  readonly hub: Hub;
  readonly id: number;
  readonly stream: AsyncStream<any>;
  binding!: SocketBinding;
  /** A handler for this connection is running (or awaited): new events are queued. */
  busy = false;
  /** Events waiting for `busy` to clear: messages, and `null` for the disconnect. */
  queue: ReceiveQueue<Message | null> | null = null;
  /** The connect handler was (or is being) run, so the disconnect handler must run. */
  registered = false;
  /** The binding reported the close. */
  closed = false;
  closeInfo: CloseInfo | undefined = undefined;
  topics: Set<string> | null = null;
  heartbeatSeen = false;
  heartbeatSince: number;
  private settledFn: (() => void) | null = null;
  private rejectedFn: ((error: unknown) => void) | null = null;

  constructor(hub: Hub, id: number, peerAddr: string, protocol: string | undefined) {
    this.hub = hub;
    this.id = id;
    this.heartbeatSince = hub.heartbeat !== null ? Date.now() : 0;
    this.stream = new AsyncStream(this, id, peerAddr, protocol);
  }

  // Output: what the app's delivery, heartbeat and facades ask of this connection ------------------

  /** `'open'`, `'closing'` (a close frame was sent) or `'closed'` (the close was reported). */
  get state(): ConnectionState {
    return this.closed ? 'closed' : this.binding.connection.state;
  }

  /** Bytes queued for this connection that the socket has not taken yet. */
  get bufferedAmount(): number {
    return this.binding.bufferedAmount;
  }

  /** The permessage-deflate agreement in use, or null. */
  get deflate(): DeflateAgreement | null {
    return this.binding.connection.deflate;
  }

  /** Whether a message of `size` bytes would be sent compressed. */
  compresses(size: number): boolean {
    return this.binding.connection.compresses(size);
  }

  /** Whether `size` more bytes fit under `limit` (see `SocketBinding.hasRoom`). */
  hasRoom(size: number, limit: number): boolean {
    return this.binding.hasRoom(size, limit);
  }

  /** Send one message; throws like `Connection.send`. */
  send(payload: Uint8Array, isText: boolean): void {
    this.binding.connection.send(payload, isText);
  }

  /** Send one message given in pieces; throws like `Connection.sendParts`. */
  sendParts(parts: readonly Buffer[], isText: boolean): void {
    this.binding.connection.sendParts(parts, isText);
  }

  /** Send a frame encoded (or compressed) once for many connections; throws like `Connection.sendShared`. */
  sendShared(shared: SharedFrame | SharedCompression): void {
    this.binding.connection.sendShared(shared);
  }

  /** Start the close handshake, waiting at most `timeoutMs` for it (default: the app's close timeout). */
  close(code: number, reason: string, timeoutMs?: number): void {
    this.binding.close(code, reason, timeoutMs);
  }

  // Binding events -----------------------------------------------------------------------------

  onMessage(payload: Buffer, isText: boolean): void {
    this.heartbeatSeen = true;
    if (this.busy) {
      this.enqueue(Message.fromReceived(payload, isText));
      return;
    }
    const handler = this.hub.messageHandler;
    if (handler === null) return;
    this.busy = true;
    if (this.invoke(handler, Message.fromReceived(payload, isText))) return;
    this.busy = false;
    if (this.queue !== null) this.drain();
  }

  onMessageParts(parts: Buffer[], _length: number, isText: boolean): void {
    this.heartbeatSeen = true;
    if (this.busy) {
      this.enqueue(Message.fromReceivedParts(parts, isText));
      return;
    }
    const handler = this.hub.messageHandler;
    if (handler === null) return;
    this.busy = true;
    if (this.invoke(handler, Message.fromReceivedParts(parts, isText))) return;
    this.busy = false;
    if (this.queue !== null) this.drain();
  }

  onPong(): void {
    this.heartbeatSeen = true;
  }

  onClose(code: number, reason: string, error: WebSocketError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const info: CloseInfo = { code, reason, wasClean: error === undefined };
    if (error !== undefined) info.error = error;
    this.closeInfo = info;
    this.hub.unregister(this);
    if (!this.registered) return;
    if (this.busy) this.enqueue(null);
    else this.disconnect();
  }

  // Handler invocation -------------------------------------------------------------------------

  /** Run the connect handler (the peer is registered). */
  connect(): void {
    this.registered = true;
    const handler = this.hub.connectHandler;
    if (handler === null) return;
    this.busy = true;
    let result: unknown;
    try {
      result = handler(this.stream, this.hub.state);
    } catch (error) {
      this.hub.report(error, this.stream);
    }
    if (isPromiseLike(result)) {
      this.await(result);
      return;
    }
    this.busy = false;
    if (this.queue !== null) this.drain();
  }

  /** Call the message handler; true if it returned a promise (then `busy` stays set). */
  private invoke(handler: MessageHandler<unknown, unknown>, message: Message): boolean {
    let result: unknown;
    try {
      result = handler(this.stream, message, this.hub.state);
    } catch (error) {
      this.hub.report(error, this.stream);
      return false;
    }
    if (!isPromiseLike(result)) return false;
    this.await(result);
    return true;
  }

  private await(result: PromiseLike<unknown>): void {
    result.then(
      (this.settledFn ??= () => this.settled()),
      (this.rejectedFn ??= (error: unknown) => {
        this.hub.report(error, this.stream);
        this.settled();
      }),
    );
  }

  private settled(): void {
    this.busy = false;
    this.drain();
  }

  private enqueue(item: Message | null): void {
    const queue = (this.queue ??= new ReceiveQueue());
    if (queue.push(item, item === null ? 0 : item.byteLength, this.hub.maxQueuedBytes)) this.binding.pause();
  }

  /** Run queued events until one goes async or the queue is empty. */
  private drain(): void {
    const queue = this.queue;
    if (queue === null) return;
    while (!this.busy && queue.length > 0) {
      const item = queue.shift() as Message | null;
      if (item === null) {
        this.disconnect();
        break;
      }
      const handler = this.hub.messageHandler;
      if (handler === null) continue;
      this.busy = true;
      if (!this.invoke(handler, item)) this.busy = false;
    }
    if (queue.resumeDue(this.hub.maxQueuedBytes) && !this.closed) this.binding.resume();
  }

  private disconnect(): void {
    // Nothing runs for this connection after its disconnect handler.
    this.busy = true;
    this.queue = null;
    const hub = this.hub;
    const handler = hub.disconnectHandler;
    if (handler === null) {
      hub.finished(this);
      return;
    }
    let result: unknown;
    try {
      result = handler(this.stream, hub.state);
    } catch (error) {
      hub.report(error, this.stream);
    }
    if (!isPromiseLike(result)) {
      hub.finished(this);
      return;
    }
    result.then(
      () => hub.finished(this),
      (error: unknown) => {
        hub.report(error, this.stream);
        hub.finished(this);
      },
    );
  }
}
