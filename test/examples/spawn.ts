import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';

export interface RunningProcess {
  child: ChildProcessWithoutNullStreams;
  /** The ws:// URL from the `listening on` line. */
  url: string;
  /** Everything printed to stdout so far. */
  output(): string;
  /** Resolves when stdout contains `text`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM, then the exit code (SIGKILL after a timeout). */
  stop(): Promise<number | null>;
}

/** Start `node <args>` from the repo root and wait for its `listening on URL` line. */
export async function startProcess(args: string[], timeoutMs = 15_000): Promise<RunningProcess> {
  const child = spawn(process.execPath, args, { cwd: new URL('../..', import.meta.url), stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  const watchers = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    for (const watcher of watchers) watcher();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));

  const waitFor = (text: string | RegExp, limit = 5000): Promise<void> =>
    new Promise((resolve, reject) => {
      const matches = (): boolean => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout));
      if (matches()) return resolve();
      const timer = setTimeout(() => {
        watchers.delete(check);
        reject(new Error(`timed out waiting for ${text}; stdout: ${stdout}\nstderr: ${stderr}`));
      }, limit);
      const check = (): void => {
        if (!matches()) return;
        clearTimeout(timer);
        watchers.delete(check);
        resolve();
      };
      watchers.add(check);
    });

  await waitFor(/listening on \S+/, timeoutMs);
  const url = /listening on (\S+)/.exec(stdout)![1]!;
  return {
    child,
    url,
    output: () => stdout,
    waitFor,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const [code] = (await exited) as [number | null];
      clearTimeout(timer);
      return code;
    },
  };
}
