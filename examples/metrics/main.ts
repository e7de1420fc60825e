// The guide's metrics chapter: one Metrics counts for two WebSocket routes, a per-connection
// echo and an event-app chat, and is served at /metrics in the Prometheus text format, on the
// app itself and (given a second argument) on a port of its own.
//
//   npx tsx examples/metrics/main.ts [address] [metrics-port]     (default 127.0.0.1:8080)
import { once } from 'node:events';
import { createServer } from 'node:http';
import { App, AsyncWebSocketApp, Metrics, asyncWebsocketHandler, metricsHandler, metricsRoute, websocketHandler } from 'humphrey-ws';

// One Metrics for everything this server does: each route counts into it.
const metrics = new Metrics();

const echo = websocketHandler(
  async (stream) => {
    for await (const message of stream) await stream.send(message);
  },
  { metrics },
);

const chat = AsyncWebSocketApp.unlinked(undefined, { metrics, backpressure: 'drop' })
  .withHeartbeat({ intervalMs: 15_000, timeoutMs: 30_000 })
  .withMessageHandler((stream, message) => stream.broadcast(message));

const app = new App()
  .withWebsocketRoute('/echo', echo)
  .withWebsocketRoute('/chat', asyncWebsocketHandler(chat.connectHook()))
  .withStatelessRoute('/metrics', metricsRoute(metrics))
  .withStatelessRoute('/figures', () => Response.json(metrics.snapshot()));

// Or on a port of its own, with plain node:http, for a scraper that should not reach the app.
const metricsPort = process.argv[3];
const metricsServer = metricsPort === undefined ? undefined : createServer(metricsHandler(metrics)).listen(Number(metricsPort), '127.0.0.1');
if (metricsServer !== undefined) await once(metricsServer, 'listening');

const shutdown = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => shutdown.abort());
await app.run(process.argv[2] ?? '127.0.0.1:8080', { signal: shutdown.signal });
if (metricsServer !== undefined) console.log(`metrics on http://127.0.0.1:${(metricsServer.address() as { port: number }).port}/metrics`);
console.log(`listening on ${app.url}`);
shutdown.signal.addEventListener('abort', () => metricsServer?.close());
