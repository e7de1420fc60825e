import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { createUpgradeListener, type Metrics, type UpgradeRequest } from '../index.js';
import type { Broker } from '../broker/types.js';
import { PORT, integer, UsageError, type Flag, type ParsedArgs } from './flags.js';
import { isPrimaryOf, startWorkers, workerStopRequested } from './scale.js';
import { serveMetrics } from './metrics.js';

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
 * close every client with 1001 and resolve with exit status 0. With `--workers` the primary
 * forks the workers (each runs this same command and serves), prints the line once they all
 * listen, and on the signal stops them all. `broker`, if any, is closed last. `metrics` (the
 * route's) count the listener's own refusals too, and are served with `--metrics-port`.
 */
export async function serveUpgrades(route: UpgradeTarget, values: ParsedArgs['values'], defaultPort: number, broker?: Broker, metrics?: Metrics): Promise<number> {
  const tls = certificateFrom(values);
  const stopMetrics = metrics === undefined ? undefined : await serveMetrics(values, metrics);
  if (isPrimaryOf(values)) {
    const primary = await startWorkers(values);
    console.log(`listening on ${urlOf(primary.address, tls !== undefined)}`);
    await onceStopSignal();
    await primary.close();
    return 0;
  }
  const host = (values.get('host') as string | undefined) ?? '127.0.0.1';
  const port = (values.get('port') as number | undefined) ?? defaultPort;
  // The listener reads request heads itself: no node:http per connection.
  const server = createUpgradeListener(route, { ...(tls ? { tls } : {}), ...(metrics ? { metrics } : {}) });
  server.listen(port, host);
  await once(server, 'listening');
  // A worker stays quiet (the primary says where they listen) and stops when the primary says so.
  const stopRequested = workerStopRequested();
  if (stopRequested === undefined) console.log(`listening on ${urlOf(server.address() as AddressInfo, tls !== undefined)}`);

  await (stopRequested ?? onceStopSignal());
  server.close();
  server.destroyPendingHandshakes();
  await route.shutdown(1001, 'server shutting down');
  await broker?.close();
  await stopMetrics?.();
  return 0;
}

function urlOf(address: { address?: string; host?: string; port: number; family: string }, secure: boolean): string {
  const host = address.address ?? address.host ?? '127.0.0.1';
  return `${secure ? 'wss' : 'ws'}://${address.family === 'IPv6' ? `[${host}]` : host}:${address.port}`;
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
