// What the flood tests share: a writer that floods until the server stops reading, a peak
// RSS sampler, and the memory bound.
//
// The bound: a server that stops reading a socket whose output is over its high-water mark
// (64 KiB for the stream API, 2 x the message size for the event app) holds per flooding
// connection at most that, one message (1 MiB here), its queue of unread messages (1 MiB) and
// a read buffer (64 KiB). Allowing for garbage V8 has not collected yet, a growth of 64 MiB is
// the bound; each flood sends 256 MiB, which a server that buffers everything it owes (or
// keeps per-fragment bookkeeping without a limit) shows as a growth of hundreds of MiB.

import { Peer, type ServerEvent } from './peer.js';
import { sleep, type EchoServer } from './server.js';

/** The servers under flood run with `--max-message-size` this (1 MiB). */
export const MAX_MESSAGE_SIZE = 1024 * 1024;
export const FLOOD_BYTES = 256 * 1024 * 1024;
export const GROWTH_BOUND = 64 * 1024 * 1024;

/** Samples the server's RSS every 20 ms until `stop()`, which returns the peak. */
export function watchPeak(server: EchoServer): { stop(): number } {
  let peak = server.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, server.rss());
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, server.rss());
    },
  };
}

/**
 * Write `chunk` over and over, up to `total` bytes, waiting for drain; stop early when the
 * server has stopped reading (no drain for `stallMs`) or the connection is gone.
 */
export async function flood(peer: Peer, chunk: Buffer, total: number, stallMs = 2000): Promise<number> {
  const socket = peer.socket;
  let written = 0;
  while (written < total && !socket.destroyed) {
    written += chunk.length;
    if (socket.write(chunk)) continue;
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => socket.once('drain', () => resolve(true))),
      peer.closed.then(() => false),
      sleep(stallMs).then(() => false),
    ]);
    if (!drained) break;
  }
  return written;
}

/** Events until the server's close frame; returns its code. */
export async function closeCode(peer: Peer, timeoutMs = 30_000): Promise<number | undefined> {
  for (;;) {
    const event: ServerEvent = await peer.next(timeoutMs);
    if (event.type === 'close') return event.code;
    if (event.type === 'violation') throw new Error(`server broke the protocol: ${event.what}`);
  }
}

/** Fails if the server's RSS grew by the bound or more. */
export function assertBounded(growth: number): void {
  if (growth >= GROWTH_BOUND) throw new Error(`server RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB, over the bound of ${GROWTH_BOUND / 2 ** 20} MiB`);
}
