// Running the built command (bin/humphrey-ws.js -> dist/) as `npx humphrey-ws` does.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const BIN = 'bin/humphrey-ws.js';
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Run the command to completion (for help and usage errors). */
export function runCli(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
}

export interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  stdout(): Buffer;
  stderr(): string;
  /** Resolves once stdout + stderr contain `pattern` (rejects after `ms`). */
  waitFor(pattern: RegExp, ms?: number): Promise<void>;
  /** The exit status, once the process has exited. */
  exited: Promise<number | null>;
}

/**
 * Start the command without blocking the test's event loop (the test's own server must keep
 * answering). With `terminal`, it runs under `script`, on a pseudo-terminal, as if typed into.
 */
export function startCli(args: string[], { terminal = false, timeoutMs = 30_000 } = {}): RunningCli {
  const command = [process.execPath, BIN, ...args];
  const child = terminal
    ? spawn('script', ['-qefc', command.map(shellQuote).join(' '), '/dev/null'], { cwd: ROOT, stdio: 'pipe', env: { ...process.env, TERM: 'dumb' } })
    : spawn(command[0]!, command.slice(1), { cwd: ROOT, stdio: 'pipe' });
  const out: Buffer[] = [];
  let err = '';
  const watchers = new Set<() => void>();
  const notify = (): void => watchers.forEach((watcher) => watcher());
  child.stdout.on('data', (chunk: Buffer) => (out.push(chunk), notify()));
  child.stderr.setEncoding('utf8').on('data', (text: string) => ((err += text), notify()));
  child.stdin.on('error', () => {}); // the command may exit before reading everything
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = once(child, 'close').then(([status]) => {
    clearTimeout(timer);
    return status as number | null;
  });
  const text = (): string => Buffer.concat(out).toString('utf8') + err;
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited,
    waitFor: (pattern, ms = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!pattern.test(text())) return;
          watchers.delete(check);
          clearTimeout(limit);
          resolve();
        };
        const limit = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`no ${pattern} within ${ms} ms; output: ${text()}`));
        }, ms);
        watchers.add(check);
        check();
      }),
  };
}

export interface Finished {
  status: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Start the command, write `input` to its stdin and end it, and wait for it to exit. */
export async function runCliAsync(args: string[], input?: string | Buffer): Promise<Finished> {
  const cli = startCli(args);
  if (input !== undefined) cli.child.stdin.write(input);
  cli.child.stdin.end();
  const status = await cli.exited;
  return { status, stdout: cli.stdout().toString('utf8'), stderr: cli.stderr(), stdoutBytes: cli.stdout() };
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
