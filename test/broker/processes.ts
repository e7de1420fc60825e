// Server processes and clients for the scale-out tests: each server is a real process running
// fixtures/chat-server.ts; clients are `ws` clients that record what they receive.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

const FIXTURE = fileURLToPath(new URL('./fixtures/chat-server.ts', import.meta.url));

export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** One server process (a single process, or a cluster's primary) and the JSON lines it printed. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  port = 0;
  exited: { code: number | null; signal: string | null } | null = null;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.once('exit', (code, signal) => void (this.exited = { code, signal }));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not ours
      }
    });
  }

  static async start(env: Record<string, string>): Promise<ServerProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const server = new ServerProcess(child);
    await until(() => server.exited !== null || server.lines.some((line) => 'listening' in line), 'the server to listen', 30000);
    if (server.exited !== null) throw new Error(`server exited at start: ${JSON.stringify(server.exited)}`);
    server.port = server.lines.find((line) => 'listening' in line)!.listening as number;
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Lines with `key`, e.g. `health` or `exit`. */
  linesWith(key: string): Record<string, unknown>[] {
    return this.lines.filter((line) => key in line);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.exited !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    await exited;
    clearTimeout(timer);
  }
}

export interface Client {
  ws: WebSocket;
  id: number;
  pid: number;
  /** Text messages after the greeting. */
  received: string[];
  closed: Promise<{ code: number }>;
}

/** A client of `url`, resolved once greeted with its connection id and server pid. */
export async function client(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  const received: string[] = [];
  const greeting = new Promise<{ id: number; pid: number }>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('message', (data) => resolve(JSON.parse(String(data)) as { id: number; pid: number }));
  });
  const closed = new Promise<{ code: number }>((resolve) => ws.once('close', (code) => resolve({ code })));
  const { id, pid } = await greeting;
  ws.on('message', (data) => received.push(String(data)));
  ws.on('error', () => {});
  return { ws, id, pid, received, closed };
}

/** Send `command` and wait for the first new message that starts with `answer`. */
export async function ask(c: Client, command: string, answer: string): Promise<string> {
  const from = c.received.length;
  c.ws.send(command);
  let found: string | undefined;
  await until(() => (found = c.received.slice(from).find((m) => m.startsWith(answer))) !== undefined, `answer to ${command}`);
  return found!;
}
