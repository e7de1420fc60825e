import type { Duplex } from 'node:stream';
import { buildRejectResponse } from '../protocol/handshake.js';
import { encodeClosePayload, encodeFrame, Opcode } from '../protocol/frame.js';
import { adoptSocket } from './adopt.js';

/**
 * How long a refused connection may stay open after its answer was written, in ms: time for
 * the answer to leave and the peer to close its side. A peer still connected after it is
 * destroyed, so a client that never closes cannot keep a refused socket (and its memory).
 */
export const REFUSE_LINGER_MS = 1000;

function destroySocket(socket: Duplex): void {
  socket.destroy();
}

/**
 * Write `bytes` as the last thing on `socket`, end our side and let the peer go: what it still
 * sends is read and discarded (so its end or reset is seen), and the socket is destroyed after
 * `REFUSE_LINGER_MS` if it is still open. The linger timer is cleared when the socket closes.
 */
function hangUp(socket: Duplex, bytes: string | Buffer): void {
  adoptSocket(socket);
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(bytes);
  socket.resume();
  const timer = setTimeout(destroySocket, REFUSE_LINGER_MS, socket);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Refuse an upgrade request with an HTTP response (`status`, `headers`, a plain-text `body`)
 * on its raw socket, then close the connection (see `REFUSE_LINGER_MS`). The one way every
 * path of this library refuses a connection before its handshake completed. Returns null, so
 * a handshake step can `return refuseUpgrade(...)`.
 */
export function refuseUpgrade(socket: Duplex, status: number, body = '', headers: Record<string, string> = {}): null {
  hangUp(socket, buildRejectResponse(status, body, headers));
  return null;
}

/**
 * Close a connection whose `101` was already written but that will not be served (its server
 * began shutting down meanwhile): a close frame with `code` and `reason`, then as
 * `refuseUpgrade`.
 */
export function refuseAccepted(socket: Duplex, code: number, reason: string): void {
  hangUp(socket, encodeFrame(Opcode.Close, encodeClosePayload(code, reason))[0]!);
}
