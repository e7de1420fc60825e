import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metricsHandler, type MetricsSource } from '../index.js';
import { PORT, UsageError, type Flag, type ParsedArgs } from './flags.js';

// --metrics-port: the server's figures in the Prometheus text format on a port of their own.

export const metricsPortFlag: Flag<number> = {
  name: 'metrics-port',
  value: 'PORT',
  parse: PORT,
  help: 'serve the figures for Prometheus at http://HOST:PORT/metrics\n(0 picks a free port)',
  defaultText: 'off',
};

/**
 * With `--metrics-port`: serve `source` at `/metrics` on `--host` and that port (404 for any
 * other path), print `metrics on URL`, and resolve with a function that stops serving.
 * Undefined without the flag.
 */
export async function serveMetrics(values: ParsedArgs['values'], source: MetricsSource): Promise<(() => Promise<void>) | undefined> {
  const port = values.get('metrics-port') as number | undefined;
  if (port === undefined) return undefined;
  if (values.get('workers') !== undefined) {
    // Each worker counts only its own connections, and a scrape would reach one at random.
    throw new UsageError('--metrics-port cannot be combined with --workers');
  }
  const host = (values.get('host') as string | undefined) ?? '127.0.0.1';
  const handler = metricsHandler(source);
  const server = createServer((request, response) => {
    if ((request.url ?? '/').split('?')[0] === '/metrics') {
      handler(request, response);
      return;
    }
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('the figures are at /metrics\n');
  });
  server.listen(port, host);
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  console.log(`metrics on http://${shown}:${address.port}/metrics`);
  return async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}
