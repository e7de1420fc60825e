import { CloseCode, encodeShared, Opcode, type SharedFrame } from '../protocol/frame.js';
import { isBlob, Message, toBuffer, type MessageLike } from '../message.js';
import { WebSocketError } from '../protocol/errors.js';
import { nodeOf } from '../broker/types.js';
import type { Hub } from './hub.js';
import type { DeflateAgreement } from '../protocol/deflate/negotiate.js';
import { SharedCompression } from '../protocol/deflate/shared.js';
import type { Peer } from './peer.js';
import type { DeliveryReport } from './types.js';

// Send, broadcast and publish for the event app, with the backpressure policy applied to each
// receiver and every skipped receiver counted in the report.

const QUEUED_ONE: DeliveryReport = Object.freeze({ queued: 1, skipped: 0 });
const SKIPPED_ONE: DeliveryReport = Object.freeze({ queued: 0, skipped: 1 });
export const NOWHERE: DeliveryReport = Object.freeze({ queued: 0, skipped: 0 });

/**
 * The bytes of `message`; throws `WS_ERR_INVALID_ARGUMENT` for anything that is not a
 * `MessageLike` (before anything is queued). A Blob is refused too: a delivery report is
 * given at once and could not honestly count a payload not read yet (`await blob.arrayBuffer()`).
 */
function payloadOf(message: MessageLike): Buffer {
  if (typeof message === 'string') return Buffer.from(message, 'utf8');
  if (message instanceof Message) return message.bytes();
  if (isBlob(message)) {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a Blob cannot be sent by the event app: send await blob.arrayBuffer()');
  }
  return toBuffer(message);
}

function isTextOf(message: MessageLike): boolean {
  return typeof message === 'string' || (message instanceof Message && message.isText);
}

/**
 * Whether `size` more bytes may be queued for `peer` under the app's `maxBufferedAmount` (only
 * bytes the peer has not read count: see `SocketBinding.hasRoom`); if not, applies the policy.
 */
function hasRoom(hub: Hub, peer: Peer, size: number): boolean {
  if (peer.hasRoom(size, hub.maxBufferedAmount)) return true;
  if (hub.closeOnBackpressure) {
    hub.metrics.backpressureClosed++;
    peer.close(CloseCode.PolicyViolation, 'backpressure limit exceeded');
  } else {
    hub.metrics.backpressureDropped++;
  }
  return false;
}

/** Send to one connection. */
export function sendTo(hub: Hub, peer: Peer, message: MessageLike): DeliveryReport {
  // Bytes are checked (and converted) first: a bad payload throws whatever the peer's state.
  if (typeof message !== 'string' && !(message instanceof Message)) message = payloadOf(message);
  if (peer.state !== 'open') return SKIPPED_ONE;
  let payload: Uint8Array;
  let isText: boolean;
  if (typeof message === 'string') {
    payload = Buffer.from(message, 'utf8');
    isText = true;
  } else if (message instanceof Message) {
    const parts = message.unjoinedParts();
    if (parts !== undefined) {
      // Received in pieces: sent on as they are, without joining them.
      if (!hasRoom(hub, peer, message.byteLength)) return SKIPPED_ONE;
      peer.sendParts(parts, message.isText);
      return QUEUED_ONE;
    }
    payload = message.bytes();
    isText = message.isText;
  } else {
    payload = message as Buffer;
    isText = false;
  }
  if (!hasRoom(hub, peer, payload.length)) return SKIPPED_ONE;
  peer.send(payload, isText);
  return QUEUED_ONE;
}

/**
 * Send one message to each peer (except `except`), applying the policy to each. The
 * uncompressed frame is encoded once for all peers that get it uncompressed; peers that agreed
 * permessage-deflate without server context takeover share one compression per agreement;
 * peers with context takeover compress it each with their own compressor, in order.
 */
function deliver(hub: Hub, peers: Iterable<Peer>, payload: Uint8Array, isText: boolean, except: Peer | null): DeliveryReport {
  let queued = 0;
  let skipped = 0;
  const size = payload.length;
  let frame: SharedFrame | null = null;
  let shared: Map<DeflateAgreement, SharedCompression> | null = null;
  for (const peer of peers) {
    if (peer === except) continue;
    if (peer.state !== 'open' || !hasRoom(hub, peer, size)) {
      skipped++;
      continue;
    }
    queued++;
    if (!peer.compresses(size)) {
      peer.sendShared((frame ??= encodeShared(isText ? Opcode.Text : Opcode.Binary, payload)));
      continue;
    }
    const agreement = peer.deflate!;
    if (!agreement.sendNoContextTakeover) {
      peer.send(payload, isText);
      continue;
    }
    let compression = (shared ??= new Map()).get(agreement);
    if (compression === undefined) {
      compression = new SharedCompression(agreement, toBuffer(payload), isText);
      shared.set(agreement, compression);
    }
    peer.sendShared(compression);
  }
  return queued === 0 && skipped === 0 ? NOWHERE : { queued, skipped };
}

/** Send to every connection of the app (but `except`), and to the broker's other members. */
export function broadcast(hub: Hub, message: MessageLike, except: Peer | null): DeliveryReport {
  const payload = payloadOf(message);
  const isText = isTextOf(message);
  hub.metrics.broadcasts++;
  const report = hub.peers.size === 0 ? NOWHERE : deliver(hub, hub.peers.values(), payload, isText, except);
  hub.membership?.publish(null, payload, isText);
  return report;
}

/** Send to every subscriber of `topic` (but `except`), and to the broker's other members. */
export function publish(hub: Hub, topic: string, message: MessageLike, except: Peer | null): DeliveryReport {
  const payload = payloadOf(message);
  const isText = isTextOf(message);
  hub.metrics.publishes++;
  const subscribers = hub.topics.subscribers(topic);
  const report = subscribers === undefined ? NOWHERE : deliver(hub, subscribers, payload, isText, except);
  hub.membership?.publish(topic, payload, isText);
  return report;
}

/**
 * Send to a connection this process does not have: hand it to the broker member that owns the
 * id. `{ queued: 0, skipped: 0 }` once handed over (its fate is decided there) or if no broker
 * can reach it; `{ queued: 0, skipped: 1 }` if it could not be handed over (counted as dropped).
 */
export function sendAcross(hub: Hub, id: number, message: MessageLike): DeliveryReport {
  const membership = hub.membership;
  if (membership?.sendTo === undefined || nodeOf(id) === membership.node) return NOWHERE;
  return membership.sendTo(id, payloadOf(message), isTextOf(message)) ? NOWHERE : SKIPPED_ONE;
}

/** Deliver a send from another member to our connection `id`, if it is still open. */
export function deliverDirect(hub: Hub, id: number, payload: Buffer, isText: boolean): void {
  const peer = hub.peers.get(id);
  if (peer !== undefined) sendTo(hub, peer, Message.fromReceived(payload, isText));
}

/** Deliver what another member of the broker broadcast or published. */
export function deliverFromBroker(hub: Hub, topic: string | null, payload: Buffer, isText: boolean): void {
  if (topic === null) {
    if (hub.peers.size > 0) deliver(hub, hub.peers.values(), payload, isText, null);
    return;
  }
  const subscribers = hub.topics.subscribers(topic);
  if (subscribers !== undefined) deliver(hub, subscribers, payload, isText, null);
}
