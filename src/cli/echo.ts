import { AsyncWebSocketApp, Metrics, websocketHandler } from '../index.js';
import { oneOf } from './flags.js';
import type { Command } from './command.js';
import { workersFlag } from './scale.js';
import { metricsPortFlag } from './metrics.js';
import { DEFAULT_MAX_MESSAGE_SIZE, maxMessageSizeFlag, serveUpgrades, serverFlags, type UpgradeTarget } from './serve.js';

const DEFAULT_PORT = 9001;

export const echo: Command = {
  name: 'echo',
  summary: 'Echo every text and binary message back, on every path.',
  flags: [
    ...serverFlags(DEFAULT_PORT),
    maxMessageSizeFlag,
    {
      name: 'mode',
      value: 'sync|async',
      parse: oneOf('sync', 'async'),
      help: 'sync: a per-connection handler (websocketHandler)\nasync: the event app (AsyncWebSocketApp)',
      defaultText: 'sync',
    },
    { name: 'deflate', help: 'accept permessage-deflate (RFC 7692) with the default settings' },
    workersFlag,
    metricsPortFlag,
  ],
  details: `Prints "listening on ws://HOST:PORT" once ready. SIGINT or SIGTERM closes every client
with 1001 and exits 0.

Output is bounded in both modes: in sync mode each echo waits until the socket has taken it,
so a client that sends without reading is stopped by TCP flow control; in async mode such a
client is closed with 1008 once twice --max-message-size is waiting for it.

--metrics-port PORT prints "metrics on URL" first and serves the figures there (connections,
messages, bytes, refusals, close codes) in the Prometheus text format.`,
  run({ values }) {
    const maxMessageSize = (values.get('max-message-size') as number | undefined) ?? DEFAULT_MAX_MESSAGE_SIZE;
    const perMessageDeflate = values.get('deflate') === true;
    const metrics = new Metrics();
    if (values.get('mode') === 'async') {
      // An echo must never drop: 'close' fails a client that stops reading instead.
      const app = AsyncWebSocketApp.unlinked(undefined, { maxMessageSize, backpressure: 'close', maxBufferedAmount: 2 * maxMessageSize, perMessageDeflate, metrics })
        .withMessageHandler((stream, message) => stream.send(message));
      return serveUpgrades(app.connectHook(), values, DEFAULT_PORT, undefined, metrics);
    }
    const route = websocketHandler(
      async (stream) => {
        // Awaiting each send is what bounds the output: while the client does not read, the
        // handler stops taking messages, the stream's queue fills and the socket stops reading.
        for await (const message of stream) await stream.send(message);
      },
      { maxMessageSize, perMessageDeflate, metrics },
    );
    const target: UpgradeTarget = Object.assign(
      (request: Parameters<UpgradeTarget>[0], socket: Parameters<UpgradeTarget>[1], head: Buffer) => route(request, socket, head, undefined),
      { shutdown: (code?: number, reason?: string) => route.shutdown(code, reason) },
    );
    return serveUpgrades(target, values, DEFAULT_PORT, undefined, metrics);
  },
};
