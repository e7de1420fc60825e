/**
 * What a server counts, for both architectures: the socket binding counts connections,
 * messages and bytes, the upgrade counts refusals, the event app counts broadcasts, publishes,
 * backpressure and heartbeat timeouts. Counting is plain number increments on fields (no
 * allocation per message); reading takes a `snapshot()`.
 */

/** The figures of a `Metrics`, as plain numbers (safe to `JSON.stringify`). */
export interface MetricsSnapshot {
  /** WebSocket connections open now. */
  connections: number;
  /** WebSocket connections accepted since the start. */
  connectionsTotal: number;
  /** Upgrade requests refused, by HTTP status (e.g. `{ 403: 2, 503: 1 }`). */
  upgradesRefused: Record<number, number>;
  /** Data messages received (a fragmented message counts once). */
  messagesReceived: number;
  /** Data messages sent (one per receiver: a broadcast to 3 connections counts 3). */
  messagesSent: number;
  /** Bytes received on WebSocket connections, frame headers included (not the upgrade request). */
  bytesReceived: number;
  /** Bytes written to WebSocket connections, frame headers and control frames included (not the 101). */
  bytesSent: number;
  /** Event app: `broadcast` calls. */
  broadcasts: number;
  /** Event app: `publish` calls. */
  publishes: number;
  /** Event app: deliveries skipped because the receiver was over `maxBufferedAmount` (policy `'drop'`). */
  backpressureDropped: number;
  /** Event app: connections closed with 1008 for being over `maxBufferedAmount` (policy `'close'`). */
  backpressureClosed: number;
  /** Connections ended, by the close code they ended with (1005: none given, 1006: lost). */
  closeCodes: Record<number, number>;
  /** Connections closed because they missed their heartbeat. */
  heartbeatTimeouts: number;
}

function countIn(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function recordOf(map: Map<number, number>): Record<number, number> {
  const record: Record<number, number> = {};
  for (const key of [...map.keys()].sort((a, b) => a - b)) record[key] = map.get(key)!;
  return record;
}

/**
 * The counters of one server (or of several: give the same `Metrics` as the `metrics` option
 * of every app and route whose figures should add up). Each `AsyncWebSocketApp` and each
 * `websocketHandler` route has one of its own when none is given: read it with
 * `app.metrics()` / `route.metrics()`, or serve it with `metricsHandler` / `metricsRoute`.
 *
 * ```ts
 * const metrics = new Metrics();
 * const app = new AsyncWebSocketApp(undefined, { metrics });
 * console.log(metrics.snapshot().connections);
 * ```
 */
export class Metrics {
  /** @internal */ connections = 0;
  /** @internal */ connectionsTotal = 0;
  /** @internal */ messagesReceived = 0;
  /** @internal */ messagesSent = 0;
  /** @internal */ bytesReceived = 0;
  /** @internal */ bytesSent = 0;
  /** @internal */ broadcasts = 0;
  /** @internal */ publishes = 0;
  /** @internal */ backpressureDropped = 0;
  /** @internal */ backpressureClosed = 0;
  /**
   * @internal Incremented by whatever closes a connection for a missed heartbeat: the event
   * app's sweep, and for a per-connection stream `WebSocketStream#countHeartbeatTimeout`.
   */
  heartbeatTimeouts = 0;
  // Bounded by what can be counted: statuses 300-599, close codes 1000-4999.
  /** @internal */ readonly refusedByStatus = new Map<number, number>();
  /** @internal */ readonly closesByCode = new Map<number, number>();

  /** @internal An upgrade was refused with `status`. */
  refused(status: number): void {
    countIn(this.refusedByStatus, status);
  }

  /** @internal A connection opened (its handshake was accepted). */
  opened(): void {
    this.connections++;
    this.connectionsTotal++;
  }

  /** @internal A connection ended with `code`. */
  closed(code: number): void {
    this.connections--;
    countIn(this.closesByCode, code);
  }

  /** The figures now, as a plain object. */
  snapshot(): MetricsSnapshot {
    return {
      connections: this.connections,
      connectionsTotal: this.connectionsTotal,
      upgradesRefused: recordOf(this.refusedByStatus),
      messagesReceived: this.messagesReceived,
      messagesSent: this.messagesSent,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      broadcasts: this.broadcasts,
      publishes: this.publishes,
      backpressureDropped: this.backpressureDropped,
      backpressureClosed: this.backpressureClosed,
      closeCodes: recordOf(this.closesByCode),
      heartbeatTimeouts: this.heartbeatTimeouts,
    };
  }
}
