// `humphrey-ws echo` as a child process, in either mode, with or without TLS, and what the
// kernel says about it (open file descriptors, resident memory).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { startProcess, type RunningProcess } from '../examples/spawn.js';
import { Peer, targetOf, type PeerTarget } from './peer.js';

export const CERT = readFileSync(new URL('../fixtures/tls/cert.pem', import.meta.url));
const BIN = 'bin/humphrey-ws.js';

export type Mode = 'sync' | 'async';

/** Every server a hostile-peer test runs against: both modes, plain and with --cert. */
export const VARIANTS: readonly { mode: Mode; tls: boolean; name: string }[] = [
  { mode: 'sync', tls: false, name: 'sync' },
  { mode: 'async', tls: false, name: 'async' },
  { mode: 'sync', tls: true, name: 'sync+tls' },
  { mode: 'async', tls: true, name: 'async+tls' },
];

export interface EchoServer {
  process: RunningProcess;
  pid: number;
  target: PeerTarget;
  url: string;
  /** Open file descriptors of the server process now. */
  fds(): number;
  /** Resident set size of the server process now, in bytes. */
  rss(): number;
  /** Fails unless the process is alive and echoes for a fresh client. */
  checkServes(): Promise<void>;
  /**
   * Waits until the server has no more descriptors open than `baseline` (connections it has
   * dropped are gone) and fails if that does not happen within `timeoutMs`.
   */
  settlesTo(baseline: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startEcho(mode: Mode, secure: boolean, extra: string[] = []): Promise<EchoServer> {
  const args = [BIN, 'echo', '--host', '127.0.0.1', '--port', '0', '--mode', mode, ...extra];
  if (secure) args.push('--cert', 'test/fixtures/tls/cert.pem', '--key', 'test/fixtures/tls/key.pem');
  const running = await startProcess(args);
  const pid = running.child.pid!;
  let stderr = '';
  running.child.stderr.on('data', (text: string) => (stderr += text));
  const target = targetOf(running.url, CERT);
  const fds = (): number => readdirSync(`/proc/${pid}/fd`).length;
  const server: EchoServer = {
    process: running,
    pid,
    target,
    url: running.url,
    fds,
    rss: () => rssOf(pid),
    async checkServes() {
      assert.equal(running.child.exitCode, null, `server exited; stderr: ${stderr}`);
      assert.equal(running.child.signalCode, null, `server was killed; stderr: ${stderr}`);
      const peer = await Peer.open(target);
      const payload = Buffer.from(`fresh client ${Math.random()}`);
      peer.sendText(payload);
      assert.deepEqual((await peer.nextMessage()).data, payload);
      assert.equal(await peer.closeCleanly(), 1000);
      assert.doesNotMatch(stderr, /Unhandled|uncaught/i, 'the server reported no unhandled error');
    },
    async settlesTo(baseline, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (fds() > baseline && Date.now() < deadline) await sleep(50);
      assert.ok(fds() <= baseline, `server holds ${fds()} descriptors, ${baseline} before`);
    },
    async stop() {
      await running.stop();
    },
  };
  return server;
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `body` against the server and then checks what every hostile-peer test must leave
 * behind: the process alive and serving a fresh client, and no descriptor more than before.
 */
export async function survives(server: EchoServer, body: () => Promise<void>): Promise<void> {
  const before = server.fds();
  await body();
  await server.settlesTo(before);
  await server.checkServes();
  await server.settlesTo(before);
}
