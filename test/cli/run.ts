// Running the built command (bin/humphrey-ws.js -> dist/) as `npx humphrey-ws` does.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';

export const BIN = 'bin/humphrey-ws.js';
export const ROOT = new URL('../..', import.meta.url);

/** Run the command to completion (for help, usage errors, one-shot clients). */
export function runCli(args: string[], input?: string | Buffer): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', input, timeout: 30_000 });
}

export interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/**
 * Run the command without blocking the test's event loop (the test's own server must keep
 * answering); `input` is written to its stdin, then stdin is ended unless `keepStdinOpen`.
 */
export async function runCliAsync(
  args: string[],
  { input, keepStdinOpen = false, timeoutMs = 30_000 }: { input?: string | Buffer; keepStdinOpen?: boolean; timeoutMs?: number } = {},
): Promise<Finished> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: 'pipe' });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => {}); // the command may exit before reading everything
  if (input !== undefined) child.stdin.write(input);
  if (!keepStdinOpen) child.stdin.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [status] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  const stdoutBytes = Buffer.concat(out);
  return { status, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes };
}
