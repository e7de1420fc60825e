import type { IncomingMessage, ServerResponse } from 'node:http';
import { Metrics, type MetricsSnapshot } from '../node/metrics.js';
import type { HttpRequest } from './request.js';
import { HttpResponse } from './response.js';

// The figures of a `Metrics` in the Prometheus text exposition format (version 0.0.4): a
// `# HELP` and a `# TYPE` line per metric, counters named `..._total`, gauges not, labels for
// the HTTP status of a refused upgrade and for a close code.

/** The `Content-Type` of the Prometheus text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Anything whose figures can be served: a `Metrics`, an `AsyncWebSocketApp`, a `websocketHandler` route. */
export type MetricsSource = Metrics | { metrics(): MetricsSnapshot };

type Figure = keyof MetricsSnapshot;

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  figure: Figure;
  /** For a figure counted by a key: the label's name. */
  label?: string;
}

const FAMILIES: readonly Family[] = [
  { name: 'open_connections', type: 'gauge', help: 'WebSocket connections open now.', figure: 'connections' },
  { name: 'connections_opened_total', type: 'counter', help: 'WebSocket connections accepted.', figure: 'connectionsTotal' },
  { name: 'upgrades_refused_total', type: 'counter', help: 'Upgrade requests refused, by HTTP status.', figure: 'upgradesRefused', label: 'status' },
  { name: 'messages_received_total', type: 'counter', help: 'Data messages received.', figure: 'messagesReceived' },
  { name: 'messages_sent_total', type: 'counter', help: 'Data messages sent (one per receiver).', figure: 'messagesSent' },
  { name: 'received_bytes_total', type: 'counter', help: 'Bytes received on WebSocket connections, frame headers included.', figure: 'bytesReceived' },
  { name: 'sent_bytes_total', type: 'counter', help: 'Bytes written to WebSocket connections, frame headers included.', figure: 'bytesSent' },
  { name: 'broadcasts_total', type: 'counter', help: 'Broadcasts made by the event app.', figure: 'broadcasts' },
  { name: 'publishes_total', type: 'counter', help: 'Topic publishes made by the event app.', figure: 'publishes' },
  {
    name: 'backpressure_dropped_total',
    type: 'counter',
    help: 'Deliveries skipped because the receiver was over maxBufferedAmount (policy drop).',
    figure: 'backpressureDropped',
  },
  {
    name: 'backpressure_closed_total',
    type: 'counter',
    help: 'Connections closed for being over maxBufferedAmount (policy close).',
    figure: 'backpressureClosed',
  },
  { name: 'closes_total', type: 'counter', help: 'Connections ended, by close code.', figure: 'closeCodes', label: 'code' },
  { name: 'heartbeat_timeouts_total', type: 'counter', help: 'Connections closed for missing their heartbeat.', figure: 'heartbeatTimeouts' },
];

function snapshotOf(source: MetricsSource | MetricsSnapshot): MetricsSnapshot {
  if (source instanceof Metrics) return source.snapshot();
  return typeof (source as { metrics?: unknown }).metrics === 'function' ? (source as { metrics(): MetricsSnapshot }).metrics() : (source as MetricsSnapshot);
}

/**
 * The figures in the Prometheus text exposition format, every metric named `prefix` + its
 * name (`humphrey_ws_open_connections`, `humphrey_ws_messages_received_total`, ...).
 */
export function formatMetrics(source: MetricsSource | MetricsSnapshot, prefix = 'humphrey_ws_'): string {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(`${prefix}x`)) throw new RangeError(`invalid metric name prefix ${JSON.stringify(prefix)}`);
  const snapshot = snapshotOf(source);
  let text = '';
  for (const family of FAMILIES) {
    const name = prefix + family.name;
    text += `# HELP ${name} ${family.help}\n# TYPE ${name} ${family.type}\n`;
    const value = snapshot[family.figure];
    if (typeof value === 'number') {
      text += `${name} ${value}\n`;
    } else {
      // The keys are numbers (statuses, close codes): nothing in them needs escaping.
      for (const [key, count] of Object.entries(value)) text += `${name}{${family.label!}="${key}"} ${count}\n`;
    }
  }
  return text;
}

/**
 * A `node:http` request listener that answers with the figures of `source` (a GET or HEAD;
 * anything else gets 405), e.g. `http.createServer(metricsHandler(app)).listen(9100)`, or one
 * route of your own server (`if (req.url === '/metrics') return handler(req, res)`).
 */
export function metricsHandler(source: MetricsSource, prefix?: string): (request: IncomingMessage, response: ServerResponse) => void {
  formatMetrics(new Metrics(), prefix);
  return (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('use GET\n');
      return;
    }
    const body = formatMetrics(source, prefix);
    response.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  };
}

/**
 * A route for the HTTP `App` that answers with the figures of `source`:
 * `new App().withStatelessRoute('/metrics', metricsRoute(wsApp))`.
 */
export function metricsRoute(source: MetricsSource, prefix?: string): (request: HttpRequest) => HttpResponse {
  formatMetrics(new Metrics(), prefix);
  return (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return HttpResponse.text('use GET\n', 405).withHeader('Allow', 'GET, HEAD');
    return new HttpResponse(200, formatMetrics(source, prefix), { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' });
  };
}
