import { AsyncWebSocketApp, Metrics } from '../index.js';
import { integer, oneOf } from './flags.js';
import type { Command } from './command.js';
import { brokerFrom, redisFlag, workersFlag } from './scale.js';
import { metricsPortFlag } from './metrics.js';
import { DEFAULT_MAX_MESSAGE_SIZE, maxMessageSizeFlag, serveUpgrades, serverFlags } from './serve.js';

const DEFAULT_PORT = 9002;
// A broadcast server's clients read at different speeds: give each room for a burst, while one
// that stops reading still costs at most this much memory.
const DEFAULT_MAX_BUFFERED_AMOUNT = 8 * 1024 * 1024;

export const broadcast: Command = {
  name: 'broadcast',
  summary: 'Send every message from any client to every connected client, the sender included.',
  flags: [
    ...serverFlags(DEFAULT_PORT),
    maxMessageSizeFlag,
    { name: 'heartbeat', value: 'MS', parse: integer(0), help: 'ping every MS ms; close clients silent for 2*MS ms (0: off)', defaultText: 'off' },
    {
      name: 'max-buffered-amount',
      value: 'BYTES',
      parse: integer(1),
      help: 'bytes a client may have waiting before --backpressure applies',
      defaultText: String(DEFAULT_MAX_BUFFERED_AMOUNT),
    },
    {
      name: 'backpressure',
      value: 'drop|close',
      parse: oneOf('drop', 'close'),
      help: 'a client over that limit: skip it (drop) or close it with 1008 (close)',
      defaultText: 'drop',
    },
    {
      name: 'deflate',
      help: 'accept permessage-deflate (RFC 7692) without server context takeover, so each\nbroadcast is compressed once for every compressed client',
    },
    workersFlag,
    redisFlag,
    metricsPortFlag,
  ],
  details: `Prints "listening on ws://HOST:PORT" once ready. SIGINT or SIGTERM closes every client
with 1001 and exits 0.

--workers N serves from N processes on all cores; --redis URL joins every server on that Redis
(both together: each worker joins Redis). Across processes a message is delivered at most
once: while Redis is away, what could not cross is counted on stderr (see docs/scaling.md).

--metrics-port PORT prints "metrics on URL" first and serves the figures there (connections,
messages, bytes, broadcasts, backpressure, heartbeat timeouts) in the Prometheus text format.`,
  async run({ values }) {
    const metrics = new Metrics();
    const app = AsyncWebSocketApp.unlinked(undefined, {
      maxMessageSize: (values.get('max-message-size') as number | undefined) ?? DEFAULT_MAX_MESSAGE_SIZE,
      maxBufferedAmount: (values.get('max-buffered-amount') as number | undefined) ?? DEFAULT_MAX_BUFFERED_AMOUNT,
      backpressure: (values.get('backpressure') as 'drop' | 'close' | undefined) ?? 'drop',
      perMessageDeflate: values.get('deflate') === true ? { serverNoContextTakeover: true } : false,
      metrics,
    }).withMessageHandler((stream, message) => stream.broadcast(message));
    const heartbeatMs = values.get('heartbeat') as number | undefined;
    if (heartbeatMs !== undefined && heartbeatMs > 0) app.withHeartbeat({ intervalMs: heartbeatMs, timeoutMs: 2 * heartbeatMs });
    const broker = await brokerFrom(values);
    if (broker !== undefined) app.withBroker(broker);
    return serveUpgrades(app.connectHook(), values, DEFAULT_PORT, broker, metrics);
  },
};
