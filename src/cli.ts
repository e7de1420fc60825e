import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { websocketHandler, type WebSocketRoute } from './handler.js';

const USAGE = `usage: humphrey-ws <command> [options]

commands:
  echo        echo every text and binary message back, on every path
    --host HOST               address to listen on (default 127.0.0.1)
    --port PORT               port (default 9001; 0 picks a free one)
    --cert FILE --key FILE    serve wss:// with this certificate and key
    --max-message-size BYTES  largest message accepted (default 67108864)
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

/** Listen with the route on every upgrade, print the URL, and shut down cleanly on a signal. */
async function serve(route: WebSocketRoute, flags: Flags, defaultPort: number): Promise<void> {
  const host = flags.host ?? '127.0.0.1';
  const port = integerFlag(flags, 'port', defaultPort);
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new Error('--cert and --key go together');
  const tls = flags.cert !== undefined;
  const server: Server = tls
    ? createHttpsServer({ cert: readFileSync(flags.cert!), key: readFileSync(flags.key!) })
    : createHttpServer();
  server.on('request', (_request, response) => {
    response.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain' });
    response.end('this is a WebSocket server\n');
  });
  server.on('upgrade', (request, socket, head) => route(request, socket, head, undefined));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  console.log(`listening on ${tls ? 'wss' : 'ws'}://${shownHost}:${address.port}`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    server.close();
    await route.shutdown(1001, 'server shutting down');
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
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
      checkKnown(flags, ['host', 'port', 'cert', 'key', 'max-message-size']);
      const maxMessageSize = integerFlag(flags, 'max-message-size', 64 * 1024 * 1024);
      const route = websocketHandler(
        async (stream) => {
          for await (const message of stream) void stream.send(message);
        },
        { maxMessageSize },
      );
      await serve(route, flags, 9001);
      return;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}
