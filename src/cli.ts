import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createUpgradeListener, type UpgradeRequest } from './node/listener.js';
import { listen } from './http/address.js';
import { websocketHandler } from './handler.js';
import { AsyncWebSocketApp } from './async-app.js';

const USAGE = `usage: humphrey-ws <command> [options]

commands:
  echo        echo every text and binary message back, on every path
    --host HOST               address to listen on (default 127.0.0.1)
    --port PORT               port (default 9001; 0 picks a free one)
    --cert FILE --key FILE    serve wss:// with this certificate and key
    --max-message-size BYTES  largest message accepted (default 67108864)
    --mode sync|async         per-connection handler (sync, default) or event app (async)
  broadcast   every message from any client goes to every connected client (sender too)
    --host HOST --port PORT   as above (default port 9002)
    --cert FILE --key FILE    as above
    --heartbeat MS            ping every MS ms, drop clients silent for 2*MS ms (default off)
    --max-message-size BYTES  as above
    --max-buffered-amount BYTES  bytes a client may have waiting before the policy applies
                              (default 8388608)
    --backpressure drop|close what happens to a client over that: skip it, or close it with
                              1008 (default drop; skipped deliveries are counted)
`;

type Flags = Record<string, string>;

/** Parse `--name value` and `--name=value` pairs after the command. */
function parseFlags(args: string[]): Flags {
  const flags: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}\n\n${USAGE}`);
    const equals = arg.indexOf('=');
    if (equals > 0) {
      flags[arg.slice(2, equals)] = arg.slice(equals + 1);
    } else {
      const value = args[i + 1];
      if (value === undefined || value.startsWith('--')) throw new Error(`option ${arg} needs a value`);
      flags[arg.slice(2)] = value;
      i++;
    }
  }
  return flags;
}

function integerFlag(flags: Flags, name: string, fallback: number): number {
  const text = flags[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return value;
}

function checkKnown(flags: Flags, known: string[]): void {
  for (const name of Object.keys(flags)) {
    if (!known.includes(name)) throw new Error(`unknown option --${name}\n\n${USAGE}`);
  }
}

/** Something that takes upgrade requests and can close every connection it accepted. */
interface UpgradeTarget {
  (request: UpgradeRequest, socket: Duplex, head: Buffer, state: undefined): void;
  shutdown(code?: number, reason?: string): Promise<void>;
}

/** Listen with the route on every upgrade, print the URL, and shut down cleanly on a signal. */
async function serve(route: UpgradeTarget, flags: Flags, defaultPort: number): Promise<void> {
  const host = flags.host ?? '127.0.0.1';
  const port = integerFlag(flags, 'port', defaultPort);
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new Error('--cert and --key go together');
  const tls = flags.cert !== undefined;
  // The listener reads request heads itself: no node:http per connection.
  const server = createUpgradeListener(
    (request, socket, head) => route(request, socket, head, undefined),
    tls ? { tls: { cert: readFileSync(flags.cert!), key: readFileSync(flags.key!) } } : {},
  );
  await listen(server, { host, port });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  console.log(`listening on ${tls ? 'wss' : 'ws'}://${shownHost}:${address.port}`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    server.close();
    server.destroyPendingHandshakes();
    await route.shutdown(1001, 'server shutting down');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

/** The event app as an upgrade target for `serve`. */
function asyncRoute(app: AsyncWebSocketApp): UpgradeTarget {
  const hook = app.connectHook();
  const route = ((request: UpgradeRequest, socket: Duplex, head: Buffer) => hook(request, socket, head)) as unknown as UpgradeTarget;
  route.shutdown = () => hook.shutdown();
  return route;
}

export async function main(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === undefined || command === '--help' || command === 'help' || command === '-h') {
    console.log(USAGE);
    return;
  }
  const flags = parseFlags(rest);
  switch (command) {
    case 'echo': {
      checkKnown(flags, ['host', 'port', 'cert', 'key', 'max-message-size', 'mode']);
      const maxMessageSize = integerFlag(flags, 'max-message-size', 64 * 1024 * 1024);
      const mode = flags.mode ?? 'sync';
      if (mode === 'sync') {
        const route = websocketHandler(
          async (stream) => {
            for await (const message of stream) void stream.send(message);
          },
          { maxMessageSize },
        );
        await serve(route, flags, 9001);
      } else if (mode === 'async') {
        // An echo must never drop: 'close' fails a client that stops reading instead.
        const app = AsyncWebSocketApp.unlinked(undefined, { maxMessageSize, backpressure: 'close', maxBufferedAmount: 2 * maxMessageSize })
          .withMessageHandler((stream, message) => stream.send(message));
        await serve(asyncRoute(app), flags, 9001);
      } else {
        throw new Error(`--mode must be sync or async, got ${JSON.stringify(mode)}`);
      }
      return;
    }
    case 'broadcast': {
      checkKnown(flags, ['host', 'port', 'cert', 'key', 'max-message-size', 'heartbeat', 'max-buffered-amount', 'backpressure']);
      const maxMessageSize = integerFlag(flags, 'max-message-size', 64 * 1024 * 1024);
      const heartbeatMs = integerFlag(flags, 'heartbeat', 0);
      // A broadcast server's clients read at different speeds: give each room for a burst,
      // while one that stops reading still costs at most this much memory.
      const maxBufferedAmount = integerFlag(flags, 'max-buffered-amount', 8 * 1024 * 1024);
      const backpressure = flags.backpressure ?? 'drop';
      if (backpressure !== 'drop' && backpressure !== 'close') {
        throw new Error(`--backpressure must be drop or close, got ${JSON.stringify(backpressure)}`);
      }
      const app = AsyncWebSocketApp.unlinked(undefined, { maxMessageSize, maxBufferedAmount, backpressure })
        .withMessageHandler((stream, message) => stream.broadcast(message));
      if (heartbeatMs > 0) app.withHeartbeat({ intervalMs: heartbeatMs, timeoutMs: 2 * heartbeatMs });
      await serve(asyncRoute(app), flags, 9002);
      return;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}
