// The echo server under test. Chosen with CONFORMANCE_TARGET:
//   humphrey (default): `node bin/humphrey-ws.js echo --host 127.0.0.1 --port 0` from the repo
//                       root (`npm run build` first), plus `--mode async` when
//                       CONFORMANCE_MODE=async; the URL is read from its `listening on ` line.
//   ws:                 an in-process echo server built with the `ws` package, for reference.
//   url:                an echo server that is already running at CONFORMANCE_URL
//                       (ws://host:port); the cases that need a server limited to 1 MiB
//                       messages use CONFORMANCE_URL_1MIB and are skipped without it.
// Every target echoes each text and binary message unchanged, on any path.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { WebSocketServer } from 'ws';

export interface Target {
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
}

export interface TargetOptions {
  /** Largest message the server accepts, in bytes (default: the server's, 64 MiB). */
  maxMessageSize?: number;
  /**
   * The server accepts permessage-deflate (`humphrey-ws echo --deflate`; an external target
   * from CONFORMANCE_URL_DEFLATE, else CONFORMANCE_URL). CONFORMANCE_DEFLATE=1 turns it on for
   * every file, which must pass as well: a client that offers nothing gets no compression.
   */
  deflate?: boolean;
  /** humphrey only: `--mode`, overriding CONFORMANCE_MODE. */
  mode?: 'sync' | 'async';
}

const deflateFor = (options: TargetOptions): boolean => options.deflate ?? process.env.CONFORMANCE_DEFLATE === '1';

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

export const targetName = (): string => process.env.CONFORMANCE_TARGET || 'humphrey';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function startTarget(options: TargetOptions = {}): Promise<Target> {
  const name = targetName();
  if (name === 'humphrey') return startHumphrey(options);
  if (name === 'ws') return startWs(options);
  if (name === 'url') return externalTarget(options);
  throw new Error(`unknown CONFORMANCE_TARGET ${JSON.stringify(name)} (use humphrey, ws or url)`);
}

/** Whether a target limited to `maxMessageSize` bytes can be had (always, except for url). */
export function canLimitMessageSize(): boolean {
  return targetName() !== 'url' || !!process.env.CONFORMANCE_URL_1MIB;
}

async function externalTarget(options: TargetOptions): Promise<Target> {
  const variable = options.maxMessageSize !== undefined
    ? 'CONFORMANCE_URL_1MIB'
    : options.deflate && process.env.CONFORMANCE_URL_DEFLATE ? 'CONFORMANCE_URL_DEFLATE' : 'CONFORMANCE_URL';
  if (options.maxMessageSize !== undefined && options.maxMessageSize !== 1024 * 1024)
    throw new Error('an external target can only provide a 1 MiB limit (CONFORMANCE_URL_1MIB)');
  const url = process.env[variable];
  if (!url) throw new Error(`CONFORMANCE_TARGET=url needs ${variable}=ws://host:port`);
  const parsed = new URL(url);
  return {
    url,
    host: parsed.hostname,
    port: Number(parsed.port || 80),
    stop: async () => {},
  };
}

async function startHumphrey(options: TargetOptions): Promise<Target> {
  const args = ['bin/humphrey-ws.js', 'echo', '--host', '127.0.0.1', '--port', '0'];
  if ((options.mode ?? process.env.CONFORMANCE_MODE) === 'async') args.push('--mode', 'async');
  if (deflateFor(options)) args.push('--deflate');
  if (options.maxMessageSize !== undefined) args.push('--max-message-size', String(options.maxMessageSize));
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    stderr += s;
    if (stderr.length > 20000) stderr = stderr.slice(-10000);
  });
  child.stdout!.setEncoding('utf8');

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`humphrey-ws echo did not print "listening on ..." within 10 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 10_000);
    const onData = (s: string) => {
      stdout += s;
      const m = /listening on (\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.off('exit', onExit);
        // Keep draining stdout so the child never blocks on a full pipe.
        child.stdout!.resume();
        resolveUrl(m[1]!);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      reject(new Error(`humphrey-ws echo exited (code ${code}, signal ${signal}) before listening: ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });

  const parsed = new URL(url);
  return {
    url,
    host: parsed.hostname,
    port: Number(parsed.port),
    stop: () => stopChild(child),
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

async function startWs(options: TargetOptions): Promise<Target> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: deflateFor(options),
    maxPayload: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
  });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      ws.send(data as Buffer, { binary: isBinary });
    });
  });
  await once(wss, 'listening');
  const address = wss.address();
  if (typeof address === 'string' || address === null) throw new Error('ws server has no TCP address');
  return {
    url: `ws://127.0.0.1:${address.port}`,
    host: '127.0.0.1',
    port: address.port,
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
