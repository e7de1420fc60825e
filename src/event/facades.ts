import { WebSocketError } from '../protocol/errors.js';
import { isValidCloseCode } from '../protocol/frame.js';
import type { MessageLike } from '../message.js';
import type { CloseInfo } from '../stream/stream.js';
import type { Hub } from './hub.js';
import type { Peer } from './peer.js';
import type { DeliveryReport } from './types.js';
import { broadcast, publish, sendAcross, sendTo } from './delivery.js';

/**
 * One connection as the event handlers see it. It never exposes the socket: messages go out
 * through `send`, `broadcast` and `publish`, each returning a `DeliveryReport`.
 */
export class AsyncStream<StreamState = unknown> {
  /**
   * A number unique within the app (increasing from 1), and with a broker across all its
   * processes (the process's node number times 2^32 plus a counter); use it with `AsyncSender.send`.
   */
  readonly id: number;
  /** The remote address as `host:port` (IPv6 hosts in brackets). */
  readonly peerAddr: string;
  /** The subprotocol agreed in the handshake, if any. */
  readonly protocol: string | undefined;
  /**
   * Per-connection state: what the app's stream state factory returned, or else the `data`
   * the `onUpgrade` hook accepted the connection with. Free to replace.
   */
  state: StreamState;
  readonly #peer: Peer;

  /** @internal Streams are made by the app. */
  constructor(peer: unknown, id: number, peerAddr: string, protocol: string | undefined) {
    this.#peer = peer as Peer;
    this.id = id;
    this.peerAddr = peerAddr;
    this.protocol = protocol;
    this.state = undefined as StreamState;
  }

  /** Bytes queued for this connection that the socket has not taken yet. */
  get bufferedAmount(): number {
    return this.#peer.bufferedAmount;
  }

  /** `'open'`, `'closing'` (a close frame was sent) or `'closed'`. */
  get readyState(): 'open' | 'closing' | 'closed' {
    return this.#peer.state;
  }

  /** How the connection ended (set once it has; always set in the disconnect handler). */
  get closeInfo(): CloseInfo | undefined {
    return this.#peer.closeInfo;
  }

  /** Send a message (a `Message`, a string as text, bytes as binary) to this connection. */
  send(message: MessageLike): DeliveryReport {
    return sendTo(this.#peer.hub, this.#peer, message);
  }

  /** Send a message to every connection of the app, this one included (framed once). */
  broadcast(message: MessageLike): DeliveryReport {
    return broadcast(this.#peer.hub, message, null);
  }

  /** Send a message to every subscriber of `topic` except this connection (framed once). */
  publish(topic: string, message: MessageLike): DeliveryReport {
    return publish(this.#peer.hub, topic, message, this.#peer);
  }

  /** Subscribe to `topic`. False if already subscribed or the connection is closed. */
  subscribe(topic: string): boolean {
    if (this.#peer.closed) return false;
    return this.#peer.hub.topics.subscribe(this.#peer, topic);
  }

  /** Unsubscribe from `topic`. False if not subscribed. */
  unsubscribe(topic: string): boolean {
    return this.#peer.hub.topics.unsubscribe(this.#peer, topic);
  }

  isSubscribed(topic: string): boolean {
    return this.#peer.hub.topics.isSubscribed(this.#peer, topic);
  }

  /** The topics this connection is subscribed to. */
  get topics(): string[] {
    const topics = this.#peer.topics;
    return topics === null ? [] : [...topics];
  }

  /**
   * Start the close handshake (default 1000). Messages sent before are delivered first. The
   * disconnect handler runs when the connection is closed. Throws `WS_ERR_INVALID_CLOSE_CODE`
   * for a code that cannot be sent.
   */
  close(code = 1000, reason = ''): void {
    if (!(code === 1000 || isValidCloseCode(code))) {
      throw new WebSocketError('WS_ERR_INVALID_CLOSE_CODE', `close code ${code} cannot be sent`);
    }
    if (this.#peer.closed) return;
    this.#peer.close(code, reason);
  }
}

/**
 * Sends to the app's connections from outside any event (a timer, stdin, another server).
 * Get one with `app.sender()`; it stays valid for the life of the app.
 */
export class AsyncSender {
  readonly #hub: Hub;

  /** @internal Use `app.sender()`. */
  constructor(hub: unknown) {
    this.#hub = hub as Hub;
  }

  /**
   * Send to the connection with this id. `{ queued: 0, skipped: 0 }` if there is none. With a
   * broker, an id of another process's connection is handed to that process once (reported as
   * `{ queued: 0, skipped: 0 }`, or `skipped: 1` if it could not be handed over).
   */
  send(id: number, message: MessageLike): DeliveryReport {
    const peer = this.#hub.peers.get(id);
    return peer === undefined ? sendAcross(this.#hub, id, message) : sendTo(this.#hub, peer, message);
  }

  /** Send to every connection (framed once). */
  broadcast(message: MessageLike): DeliveryReport {
    return broadcast(this.#hub, message, null);
  }

  /** Send to every subscriber of `topic` (framed once). */
  publish(topic: string, message: MessageLike): DeliveryReport {
    return publish(this.#hub, topic, message, null);
  }

  /** Whether a connection with this id is open in this process. */
  has(id: number): boolean {
    return this.#hub.peers.has(id);
  }

  /**
   * The number of open connections: this process's, plus (with a broker) those of the other
   * processes as they last reported them.
   */
  get connectionCount(): number {
    return this.#hub.peers.size + (this.#hub.membership?.remoteConnectionCount?.() ?? 0);
  }

  /** The number of subscribers of `topic`. */
  subscriberCount(topic: string): number {
    return this.#hub.topics.count(topic);
  }
}
