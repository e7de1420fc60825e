// A real redis-server for tests, and redis-cli to look into it: started on a free loopback port
// with persistence off, killed and restarted on the same port on demand, killed when done.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';
const run = promisify(execFile);

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One command through `redis-cli` (raw output: one line per reply element). */
export async function redisCommand(port: number, ...args: string[]): Promise<string[]> {
  const { stdout } = await run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), '--raw', ...args], { timeout: 5000 });
  return stdout.split('\n').filter((line) => line !== '');
}

export class RedisServer {
  readonly port: number;
  private process: ChildProcess | null = null;

  private constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  /** (Re)start on the same port and wait until it answers PING. */
  async restart(): Promise<void> {
    if (this.process !== null) throw new Error('redis-server is running');
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.process = child;
    child.once('exit', () => {
      if (this.process === child) this.process = null;
    });
    const deadline = Date.now() + 10000;
    for (;;) {
      try {
        if ((await redisCommand(this.port, 'PING'))[0] === 'PONG') return;
      } catch {
        // not listening yet
      }
      if (this.process === null) throw new Error('redis-server exited at start');
      if (Date.now() > deadline) throw new Error('redis-server did not start');
      await sleep(20);
    }
  }

  /** Kill it (SIGKILL: an outage, not a shutdown) and wait until it is gone. */
  async stop(): Promise<void> {
    const child = this.process;
    if (child === null) return;
    this.process = null;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  command(...args: string[]): Promise<string[]> {
    return redisCommand(this.port, ...args);
  }
}
