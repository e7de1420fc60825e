import type { Duplex } from 'node:stream';

// Every socket this library is handed (by its listener, an HTTP server's `upgrade` event, an
// HTTP client's `upgrade` event) is adopted first, before anything is read from or written to
// it: an 'error' with no listener is thrown by Node and ends the process, and a peer can cause
// one at any moment (a reset while we answer it). The listener stays until the socket is
// destroyed; whoever owns the socket later (a binding, a refusal) adds its own listeners on top.

/**
 * The error listener of an adopted socket. It does nothing: Node destroys a socket after an
 * error, and its owner learns of the end from 'close' (a binding also has its own listener).
 */
function ignoreSocketError(): void {}

/** Give `socket` an error listener, once (adopting it again does nothing). */
export function adoptSocket(socket: Duplex): void {
  if (!socket.listeners('error').includes(ignoreSocketError)) socket.on('error', ignoreSocketError);
}
