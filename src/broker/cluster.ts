/**
 * All cores of one machine through `node:cluster`, with no external server: the primary forks
 * workers that share the listening port (the same script runs in each), and relays between
 * them over IPC what their apps broadcast, publish and send to one connection.
 *
 * - A message crosses once: worker -> primary -> each OTHER worker that wants it (all of them
 *   for a broadcast, those with local subscribers for a topic, the owner for a directed send).
 *   The sender never gets it back.
 * - IPC uses Node's `'advanced'` serialization, so payloads cross as bytes (JSON would turn a
 *   Buffer into an array of numbers). Messages of one turn go in one IPC message.
 * - Per-connection state stays in its worker. Connection ids carry the worker's node number
 *   (its `cluster.worker.id`), so they are unique across the cluster; the primary knows which
 *   ids each worker has open, which makes cross-worker counts exact and lets it report the
 *   connections of a worker that died (`onWorkerExit`).
 * - What cannot be handed over (the channel is gone, or more than `maxPendingBytes` wait to be
 *   written to it) is dropped and counted, never queued without bound.
 */
import cluster, { type Worker } from 'node:cluster';
import { WebSocketError } from '../protocol/errors.js';
import { toBuffer } from '../protocol/bytes.js';
import { BrokerHealth } from './health.js';
import {
  nodeOf,
  type Broker,
  type BrokerDirectListener,
  type BrokerHealthListener,
  type BrokerJoinOptions,
  type BrokerListener,
  type BrokerMembership,
  type BrokerStats,
} from './types.js';

/** The key that marks our IPC messages (the app's own `process.send` traffic is left alone). */
const MARK = '__humphreyWs';
/** Set in a worker's environment by the primary that forked it. */
const WORKER_ENV = 'HUMPHREY_WS_CLUSTER_WORKER';

const DEFAULT_MAX_PENDING_BYTES = 16 * 1024 * 1024;
const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_TIMEOUT_MS = 12_000;
/** A worker that dies sooner than this after starting counts as failing at start. */
const QUICK_EXIT_MS = 1000;
const MAX_RESTART_DELAY_MS = 10_000;

/**
 * What crosses IPC, as small tuples:
 * `m` a broadcast (topic null) or publish; `d` a directed send; `o`/`c` a topic opened/closed in
 * a worker; `+`/`-` a connection opened/closed in a worker; `n` (to a worker) how many
 * connections the other processes have; `x` (to a worker) shut down.
 */
type Item =
  | ['m', string | null, Uint8Array, boolean]
  | ['d', number, Uint8Array, boolean]
  | ['o' | 'c', string]
  | ['+' | '-', number]
  | ['n', number]
  | ['x'];

interface Envelope {
  [MARK]: Item[];
}

function isEnvelope(message: unknown): message is Envelope {
  return typeof message === 'object' && message !== null && Array.isArray((message as Envelope)[MARK]);
}

function sizeOf(item: Item): number {
  return item[0] === 'm' || item[0] === 'd' ? item[2].byteLength + 64 : 32;
}

/**
 * Items for one IPC channel, sent as one message per turn. Bounded: past `maxPendingBytes`
 * (queued here plus written but not yet taken by the channel) messages are dropped and counted.
 */
class Outbox {
  private items: Item[] = [];
  private bytes = 0;
  private written = 0;
  private scheduled = false;

  constructor(
    private readonly send: (envelope: Envelope, done: (error: Error | null) => void) => boolean,
    private readonly health: BrokerHealth,
    private readonly maxPendingBytes: number,
  ) {}

  /** Queue an item; false (and counted if it was a message) if over the bound. */
  push(item: Item): boolean {
    const size = sizeOf(item);
    const isMessage = item[0] === 'm' || item[0] === 'd';
    if (isMessage && this.bytes + this.written + size > this.maxPendingBytes) {
      this.health.drop();
      return false;
    }
    this.items.push(item);
    this.bytes += size;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.items.length === 0) return;
    const items = this.items;
    const bytes = this.bytes;
    this.items = [];
    this.bytes = 0;
    const messages = items.reduce((n, item) => (item[0] === 'm' || item[0] === 'd' ? n + 1 : n), 0);
    this.written += bytes;
    const handed = this.send({ [MARK]: items }, (error) => {
      this.written -= bytes;
      if (error !== null) this.health.drop(messages);
    });
    if (!handed) {
      this.written -= bytes;
      this.health.drop(messages);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side

/** Whether this process is a worker forked by a humphrey-ws primary (`run({ workers })`, `--workers`). */
export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[WORKER_ENV] === '1';
}

let workerLink: ClusterWorkerBroker | undefined;

/** This worker's link to the primary (one per process). Throws outside such a worker. */
export function clusterWorkerBroker(): ClusterWorkerBroker {
  if (!isClusterWorker()) {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'not a worker started by a humphrey-ws cluster primary');
  }
  return (workerLink ??= new ClusterWorkerBroker());
}

interface Member {
  listener: BrokerListener;
  direct: BrokerDirectListener | undefined;
}

/** The broker in a worker: everything goes to the primary, which relays it. */
export class ClusterWorkerBroker implements Broker {
  /** This worker's node number (`cluster.worker.id`). */
  readonly node: number;
  private readonly health = new BrokerHealth();
  private readonly outbox: Outbox;
  private readonly topics = new Set<string>();
  private member: Member | null = null;
  private remoteCount = 0;
  private stopResolve: (() => void) | null = null;
  /** Resolves when the primary asks this worker to stop, or is gone. */
  readonly stopRequested: Promise<void>;

  /** @internal Use `clusterWorkerBroker()`. */
  constructor() {
    this.node = cluster.worker!.id;
    this.outbox = new Outbox(
      (envelope, done) => {
        if (!process.connected) return false;
        process.send!(envelope, undefined, {}, (error: Error | null) => done(error ?? null));
        return true;
      },
      this.health,
      DEFAULT_MAX_PENDING_BYTES,
    );
    this.stopRequested = new Promise((resolve) => {
      this.stopResolve = resolve;
    });
    process.on('message', (message: unknown) => {
      if (isEnvelope(message)) this.receive(message[MARK]);
    });
    process.once('disconnect', () => {
      this.health.down(new WebSocketError('WS_ERR_BROKER', 'the cluster primary is gone'));
      this.requestStop();
    });
    // Ctrl-C reaches every process of the group: the primary decides, and tells the workers.
    const ignoreInterrupt = (): void => {};
    process.on('SIGINT', ignoreInterrupt);
    process.once('disconnect', () => process.off('SIGINT', ignoreInterrupt));
    // SIGTERM sent to one worker stops that worker (the primary replaces it).
    process.once('SIGTERM', () => this.requestStop());
    this.health.up();
  }

  private requestStop(): void {
    const resolve = this.stopResolve;
    this.stopResolve = null;
    resolve?.();
  }

  private receive(items: Item[]): void {
    const member = this.member;
    for (const item of items) {
      switch (item[0]) {
        case 'm':
          if (member === null) break;
          if (item[1] !== null && !this.topics.has(item[1])) break;
          this.health.received++;
          member.listener(item[1], toBuffer(item[2]), item[3]);
          break;
        case 'd':
          if (member?.direct === undefined) break;
          this.health.received++;
          member.direct(item[1], toBuffer(item[2]), item[3]);
          break;
        case 'n':
          this.remoteCount = item[1];
          break;
        case 'x':
          this.requestStop();
          break;
      }
    }
  }

  join(listener: BrokerListener, options: BrokerJoinOptions = {}): BrokerMembership {
    if (this.member !== null) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a cluster worker serves one app at a time');
    const member: Member = { listener, direct: options.direct };
    this.member = member;
    const outbox = this.outbox;
    const health = this.health;
    return {
      node: this.node,
      publish(topic, payload, isText) {
        // The bytes are copied by the serializer when the batch is written, at the end of the turn.
        if (outbox.push(['m', topic, Buffer.from(payload), isText])) health.published++;
      },
      sendTo: (id, payload, isText) => {
        if (nodeOf(id) === this.node || !outbox.push(['d', id, Buffer.from(payload), isText])) {
          if (nodeOf(id) === this.node) health.drop();
          return false;
        }
        health.published++;
        return true;
      },
      topicOpened: (topic) => {
        this.topics.add(topic);
        outbox.push(['o', topic]);
      },
      topicClosed: (topic) => {
        this.topics.delete(topic);
        outbox.push(['c', topic]);
      },
      connectionOpened: (id) => void outbox.push(['+', id]),
      connectionClosed: (id) => void outbox.push(['-', id]),
      remoteConnectionCount: () => this.remoteCount,
      leave: () => {
        if (this.member !== member) return;
        this.member = null;
        for (const topic of this.topics) outbox.push(['c', topic]);
        this.topics.clear();
        outbox.flush();
      },
    };
  }

  /**
   * A broker that carries messages through `inner` (e.g. Redis) while this link still tells the
   * primary which connections are open (for counts and `onWorkerExit` reports).
   */
  around(inner: Broker): Broker {
    const outbox = this.outbox;
    return {
      join(listener, options) {
        const membership = inner.join(listener, options);
        return {
          ...membership,
          node: membership.node,
          publish: membership.publish.bind(membership),
          leave: membership.leave.bind(membership),
          connectionOpened(id) {
            membership.connectionOpened?.(id);
            outbox.push(['+', id]);
          },
          connectionClosed(id) {
            membership.connectionClosed?.(id);
            outbox.push(['-', id]);
          },
        };
      },
      onHealth: (listener) => inner.onHealth(listener),
      stats: () => inner.stats(),
      close: () => inner.close(),
    };
  }

  onHealth(listener: BrokerHealthListener): () => void {
    return this.health.on(listener);
  }

  stats(): BrokerStats {
    return this.health.stats(this.topics.size);
  }

  async close(): Promise<void> {
    this.outbox.flush();
    this.health.reportDrops();
  }
}

// ---------------------------------------------------------------------------------------------
// Primary side

/** A worker that exited, as `onWorkerExit` reports it (once per worker). */
export interface WorkerExit {
  /** Its node number (`cluster.worker.id`), the high part of its connection ids. */
  readonly node: number;
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: string | null;
  /** The connections it had open: they are gone, and their disconnect handlers could not run. */
  readonly connectionIds: readonly number[];
  /** Whether a replacement is started (not while shutting down). */
  readonly replaced: boolean;
}

export interface ClusterOptions {
  /** How many workers to fork (at least 1). */
  workers: number;
  /** Called once per worker that exits. Default: a line on stderr. */
  onWorkerExit?: (exit: WorkerExit) => void;
  /** How long `start` waits for every worker to listen. Default 30000 ms. */
  startTimeoutMs?: number;
  /** How long `close` waits for workers to shut down gracefully before killing them. Default 12000 ms. */
  stopTimeoutMs?: number;
  /** Bytes waiting for one worker's IPC channel past which messages to it are dropped. Default 16 MiB. */
  maxPendingBytes?: number;
}

/** Where the workers listen. */
export interface ClusterAddress {
  host: string;
  port: number;
  family: string;
}

interface WorkerState {
  readonly worker: Worker;
  readonly node: number;
  readonly started: number;
  readonly topics: Set<string>;
  readonly ids: Set<number>;
  readonly outbox: Outbox;
  /** The other processes' connection count last told to this worker. */
  toldCount: number;
  exited: boolean;
}

/**
 * The primary: forks the workers, replaces those that die, relays between them, and is itself
 * a broker member (node 0, no connections of its own) so `app.sender()` works in the primary.
 */
export class ClusterPrimary implements Broker {
  private readonly options: ClusterOptions;
  private readonly health = new BrokerHealth();
  private readonly workers = new Map<number, WorkerState>();
  private member: Member | null = null;
  private stopping: Promise<void> | null = null;
  private quickExits = 0;
  private countsScheduled = false;
  private address_: ClusterAddress | undefined;

  private constructor(options: ClusterOptions) {
    this.options = options;
    this.health.up();
  }

  /**
   * Fork `options.workers` workers running this same script, and resolve once every one of
   * them listens (with their shared address). Rejects with `WS_ERR_BROKER` if a worker exits
   * or does not listen in time (the others are then stopped).
   */
  static async start(options: ClusterOptions): Promise<ClusterPrimary> {
    if (!cluster.isPrimary) throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'workers are started from the primary process');
    const count = options.workers;
    if (!Number.isInteger(count) || count < 1) {
      throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `workers must be a whole number of at least 1, got ${count}`);
    }
    const primary = new ClusterPrimary(options);
    cluster.setupPrimary({ serialization: 'advanced' });
    const listening = Array.from({ length: count }, () => primary.fork());
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const addresses = await Promise.race([
        Promise.all(listening),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new WebSocketError('WS_ERR_BROKER', `workers did not listen within ${options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS} ms`)),
            options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
          );
        }),
      ]);
      primary.address_ = addresses[0];
      return primary;
    } catch (error) {
      await primary.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Where the workers listen. */
  get address(): ClusterAddress {
    return this.address_!;
  }

  /** The workers running now. */
  get workerCount(): number {
    let count = 0;
    for (const state of this.workers.values()) if (!state.exited) count++;
    return count;
  }

  /** Fork one worker; resolves with its address once it listens, rejects if it exits first. */
  private fork(): Promise<ClusterAddress> {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    const state: WorkerState = {
      worker,
      node: worker.id,
      started: Date.now(),
      topics: new Set(),
      ids: new Set(),
      outbox: new Outbox(
        (envelope, done) => {
          if (!worker.isConnected()) return false;
          worker.send(envelope, undefined, (error: Error | null) => done(error ?? null));
          return true;
        },
        this.health,
        this.options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
      ),
      toldCount: 0,
      exited: false,
    };
    this.workers.set(state.node, state);
    worker.on('message', (message: unknown) => {
      if (isEnvelope(message)) this.receive(state, message[MARK]);
    });
    // An IPC error must not bring the primary down; the exit that follows is reported.
    worker.on('error', () => {});
    return new Promise((resolve, reject) => {
      let listened = false;
      worker.once('listening', (address) => {
        listened = true;
        resolve({
          host: address.address ?? '127.0.0.1',
          port: address.port,
          family: address.addressType === 6 ? 'IPv6' : 'IPv4',
        });
      });
      worker.once('exit', (code, signal) => {
        this.exited(state, code, signal);
        if (!listened) {
          reject(new WebSocketError('WS_ERR_BROKER', `worker ${state.node} exited before listening (code ${code}, signal ${signal})`));
        }
      });
    });
  }

  private exited(state: WorkerState, code: number | null, signal: string | null): void {
    state.exited = true;
    this.workers.delete(state.node);
    const replaced = this.stopping === null && this.address_ !== undefined;
    const exit: WorkerExit = {
      node: state.node,
      pid: state.worker.process.pid,
      code,
      signal,
      connectionIds: [...state.ids],
      replaced,
    };
    this.scheduleCounts();
    const hook = this.options.onWorkerExit;
    if (hook !== undefined) {
      try {
        hook(exit);
      } catch (error) {
        console.error('humphrey-ws: onWorkerExit failed:', error);
      }
    } else if (this.stopping === null) {
      console.error(`humphrey-ws: worker ${exit.node} (pid ${exit.pid}) exited (code ${code}, signal ${signal}) with ${exit.connectionIds.length} connections${replaced ? '; starting another' : ''}`);
    }
    if (!replaced) return;
    // A worker that keeps dying at start is restarted less and less often.
    this.quickExits = Date.now() - state.started < QUICK_EXIT_MS ? this.quickExits + 1 : 0;
    const delay = this.quickExits === 0 ? 0 : Math.min(100 * 2 ** this.quickExits, MAX_RESTART_DELAY_MS);
    setTimeout(() => {
      if (this.stopping === null) this.fork().catch(() => {});
    }, delay).unref();
  }

  private receive(from: WorkerState, items: Item[]): void {
    for (const item of items) {
      switch (item[0]) {
        case 'm': {
          const topic = item[1];
          for (const state of this.workers.values()) {
            if (state === from || state.exited || (topic !== null && !state.topics.has(topic))) continue;
            state.outbox.push(item);
          }
          break;
        }
        case 'd': {
          const owner = this.workers.get(nodeOf(item[1]));
          if (owner === undefined || owner.exited) this.health.drop();
          else owner.outbox.push(item);
          break;
        }
        case 'o':
          from.topics.add(item[1]);
          break;
        case 'c':
          from.topics.delete(item[1]);
          break;
        case '+':
          from.ids.add(item[1]);
          this.scheduleCounts();
          break;
        case '-':
          from.ids.delete(item[1]);
          this.scheduleCounts();
          break;
      }
    }
  }

  /** Tell each worker how many connections the others have (once per turn, if it changed). */
  private scheduleCounts(): void {
    if (this.countsScheduled) return;
    this.countsScheduled = true;
    setImmediate(() => {
      this.countsScheduled = false;
      const total = this.totalConnections();
      for (const state of this.workers.values()) {
        const others = total - state.ids.size;
        if (others === state.toldCount || state.exited) continue;
        state.toldCount = others;
        state.outbox.push(['n', others]);
      }
    });
  }

  private totalConnections(): number {
    let total = 0;
    for (const state of this.workers.values()) total += state.ids.size;
    return total;
  }

  // The primary as a broker member (node 0) -----------------------------------------------------

  join(listener: BrokerListener, options: BrokerJoinOptions = {}): BrokerMembership {
    const member: Member = { listener, direct: options.direct };
    this.member = member;
    return {
      node: 0,
      publish: (topic, payload, isText) => {
        this.health.published++;
        this.receive(PRIMARY_SELF, [['m', topic, Buffer.from(payload), isText]]);
      },
      sendTo: (id, payload, isText) => {
        const owner = this.workers.get(nodeOf(id));
        if (owner === undefined || owner.exited) {
          this.health.drop();
          return false;
        }
        this.health.published++;
        return owner.outbox.push(['d', id, Buffer.from(payload), isText]);
      },
      remoteConnectionCount: () => this.totalConnections(),
      leave: () => {
        if (this.member === member) this.member = null;
      },
    };
  }

  onHealth(listener: BrokerHealthListener): () => void {
    return this.health.on(listener);
  }

  stats(): BrokerStats {
    const topics = new Set<string>();
    for (const state of this.workers.values()) for (const topic of state.topics) topics.add(topic);
    return this.health.stats(topics.size);
  }

  /**
   * Stop every worker gracefully: each closes its clients with 1001 and exits; one still
   * running after `stopTimeoutMs` is killed. No worker is replaced from here on.
   */
  close(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    const timeoutMs = this.options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    const exits = [...this.workers.values()].map(
      (state) =>
        new Promise<void>((resolve) => {
          if (state.exited || state.worker.isDead()) return resolve();
          const timer = setTimeout(() => {
            state.worker.process.kill('SIGKILL');
          }, timeoutMs);
          state.worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          state.outbox.push(['x']);
          state.outbox.flush();
        }),
    );
    await Promise.all(exits);
    this.health.reportDrops();
  }
}

/** The primary's own messages enter the relay as if from a worker that is no other worker. */
const PRIMARY_SELF = { topics: new Set<string>(), ids: new Set<number>() } as unknown as WorkerState;

// ---------------------------------------------------------------------------------------------
// Glue for `app.run({ workers })` and the command line

/**
 * In a worker: the broker its app uses (the link to the primary, or `inner` carried through
 * it), and `stop` run once when the primary asks the worker to stop (or is gone, or SIGTERM
 * reaches this worker); after it the worker lets go of the primary so the process can end.
 */
export function workerBroker(inner: Broker | null, stop: () => Promise<void>): Broker {
  const link = clusterWorkerBroker();
  void link.stopRequested.then(async () => {
    try {
      await stop();
    } finally {
      await link.close();
      if (process.connected) cluster.worker?.disconnect();
    }
  });
  return inner === null ? link : link.around(inner);
}

/**
 * Run `stop` on the first SIGTERM or SIGINT; once it is done, the signal is raised again so
 * the process ends as it would have (unless the app listens to it too). Returns a function
 * that removes the listeners.
 */
export function stopOnSignals(stop: () => Promise<void>): () => void {
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
  const remove = (): void => {
    for (const signal of signals) process.off(signal, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    remove();
    void stop().finally(() => {
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  for (const signal of signals) process.on(signal, onSignal);
  return remove;
}
