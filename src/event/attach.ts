import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketError } from '../protocol/errors.js';
import { refuseUpgrade } from '../node/refuse.js';
import { matchPath } from '../util/path.js';

/** One app's claim on a server's upgrade requests: those for `path` (all when undefined). */
export interface Attachment {
  path: string | undefined;
  take(request: IncomingMessage, socket: Duplex, head: Buffer): void;
}

interface ServerUpgrades {
  attachments: Attachment[];
  listener: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/**
 * The attachments of each server, behind ONE `upgrade` listener per server: with several apps
 * attached for different paths, a request none of them takes is still answered (404) instead
 * of each app leaving it to the others.
 */
const attached = new WeakMap<HttpServer | HttpsServer, ServerUpgrades>();

/** Throws `WS_ERR_INVALID_ARGUMENT` unless `server` is a server that emits `upgrade`. */
function checkServer(server: unknown): asserts server is HttpServer | HttpsServer {
  if (typeof server === 'function') {
    throw new WebSocketError(
      'WS_ERR_INVALID_ARGUMENT',
      'attach() takes an http.Server or https.Server, not a request handler: pass what app.listen() returns (Express) or fastify.server',
    );
  }
  if (!(server instanceof EventEmitter) || typeof (server as Partial<HttpServer>).listen !== 'function') {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'attach() takes an http.Server or https.Server');
  }
}

/**
 * Hand `server`'s upgrade requests for `attachment.path` to `attachment`. The first attachment
 * whose path matches takes a request; one no attachment takes is left to the server's other
 * `upgrade` listeners, or answered with 404 when there are none. Returns a function that
 * removes the attachment (and the listener with the last one).
 */
export function attachToServer(server: HttpServer | HttpsServer, attachment: Attachment): () => void {
  checkServer(server);
  let entry = attached.get(server);
  if (entry === undefined) {
    const attachments: Attachment[] = [];
    const listener = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const url = request.url ?? '/';
      for (const candidate of attachments) {
        if (candidate.path === undefined || matchPath(candidate.path, url)) {
          candidate.take(request, socket, head);
          return;
        }
      }
      if (server.listenerCount('upgrade') <= 1) refuseUpgrade(socket, 404, 'no WebSocket endpoint here');
    };
    entry = { attachments, listener };
    attached.set(server, entry);
    server.on('upgrade', listener);
  }
  const { attachments, listener } = entry;
  attachments.push(attachment);
  return () => {
    const index = attachments.indexOf(attachment);
    if (index === -1) return;
    attachments.splice(index, 1);
    if (attachments.length === 0) {
      server.off('upgrade', listener);
      attached.delete(server);
    }
  };
}
