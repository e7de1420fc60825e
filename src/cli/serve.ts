import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { createUpgradeListener, type UpgradeRequest } from '../index.js';
import { PORT, integer, UsageError, type Flag, type ParsedArgs } from './flags.js';

/** The flags every server command has. */
export function serverFlags(defaultPort: number): Flag[] {
  return [
    { name: 'host', value: 'HOST', help: 'address to listen on (0.0.0.0 for every interface)', defaultText: '127.0.0.1' },
    { name: 'port', value: 'PORT', parse: PORT, help: 'port to listen on; 0 picks a free one', defaultText: String(defaultPort) },
    { name: 'cert', value: 'FILE', help: 'serve wss:// with this PEM certificate (with --key)' },
    { name: 'key', value: 'FILE', help: 'the PEM private key for --cert' },
  ];
}

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

export const maxMessageSizeFlag: Flag<number> = {
  name: 'max-message-size',
  value: 'BYTES',
  parse: integer(1),
  help: 'largest message accepted; a bigger one closes with 1009',
  defaultText: String(DEFAULT_MAX_MESSAGE_SIZE),
};

/** The certificate and key given with --cert and --key, or undefined for plain ws://. */
export function certificateFrom(values: ParsedArgs['values']): { cert: Buffer; key: Buffer } | undefined {
  const cert = values.get('cert') as string | undefined;
  const key = values.get('key') as string | undefined;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--cert and --key go together');
  if (cert === undefined || key === undefined) return undefined;
  return { cert: readFileSync(cert), key: readFileSync(key) };
}

/** Something that takes upgrade requests and can close every connection it accepted. */
export interface UpgradeTarget {
  (request: UpgradeRequest, socket: Socket, head: Buffer): void;
  shutdown(code?: number, reason?: string): Promise<void>;
}

/**
 * Listen with `route` taking every upgrade, print `listening on URL`, and on SIGINT or SIGTERM
 * close every client with 1001 and resolve with exit status 0.
 */
export async function serveUpgrades(route: UpgradeTarget, values: ParsedArgs['values'], defaultPort: number): Promise<number> {
  const host = (values.get('host') as string | undefined) ?? '127.0.0.1';
  const port = (values.get('port') as number | undefined) ?? defaultPort;
  const tls = certificateFrom(values);
  // The listener reads request heads itself: no node:http per connection.
  const server = createUpgradeListener(route, tls ? { tls } : {});
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  console.log(`listening on ${tls ? 'wss' : 'ws'}://${shownHost}:${address.port}`);

  await onceStopSignal();
  server.close();
  server.destroyPendingHandshakes();
  await route.shutdown(1001, 'server shutting down');
  return 0;
}

/** Resolves on the first SIGINT or SIGTERM (which then no longer end the process by default). */
export function onceStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      // A second signal while shutting down still stops the process at once.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
