import type { Broker } from '../broker/types.js';
import { ClusterPrimary, clusterWorkerBroker, isClusterWorker } from '../broker/cluster.js';
import { integer, UsageError, type Flag, type ParsedArgs } from './flags.js';

// --workers and --redis: serving from several processes (see docs/scaling.md).

export const workersFlag: Flag<number> = {
  name: 'workers',
  value: 'N',
  parse: integer(1, 1024),
  help: 'serve from N worker processes (node:cluster) sharing the port;\nbroadcasts reach the clients of every worker',
  defaultText: 'one process',
};

export const redisFlag: Flag = {
  name: 'redis',
  value: 'URL',
  help: 'carry broadcasts to every server on this Redis (redis://HOST:PORT);\nneeds the ioredis package',
};

/**
 * The broker a server's app uses: Redis with `--redis`, and in a cluster worker the link to the
 * primary (around Redis if both are given). Undefined for a single process on its own.
 */
export async function brokerFrom(values: ParsedArgs['values']): Promise<Broker | undefined> {
  const url = values.get('redis') as string | undefined;
  let broker: Broker | undefined;
  // The primary of --workers serves nothing: only its workers talk to Redis.
  if (url !== undefined && !isPrimaryOf(values)) {
    let module: typeof import('../broker/redis.js');
    try {
      module = await import('../broker/redis.js');
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') throw new UsageError('--redis needs the ioredis package: npm install ioredis');
      throw error;
    }
    broker = await module.RedisBroker.connect({ url });
    // An operator sees the link's state and every loss on stderr.
    broker.onHealth((event) => {
      if (event.type === 'dropped') console.error(`humphrey-ws: ${event.count} messages could not be sent to Redis`);
      else if (event.type === 'disconnected') console.error(`humphrey-ws: Redis link down${event.error ? `: ${event.error.message}` : ''}`);
      else if (event.type === 'connected') console.error('humphrey-ws: Redis link up');
      else if (event.type === 'gap') {
        const seconds = ((event.until - event.since) / 1000).toFixed(1);
        console.error(`humphrey-ws: not subscribed for ${seconds} s: messages from other servers in that time may be missing`);
      }
      else if (event.type === 'error') console.error(`humphrey-ws: Redis broker: ${event.error.message}`);
    });
  }
  if (isClusterWorker()) {
    const link = clusterWorkerBroker();
    broker = broker === undefined ? link : link.around(broker);
  }
  return broker;
}

/** Whether this process is the primary of `--workers`: it forks the servers and serves nothing. */
export function isPrimaryOf(values: ParsedArgs['values']): boolean {
  return values.get('workers') !== undefined && !isClusterWorker();
}

/** Fork the workers (running this same command) and resolve once they all listen. */
export function startWorkers(values: ParsedArgs['values']): Promise<ClusterPrimary> {
  return ClusterPrimary.start({ workers: values.get('workers') as number });
}

/** In a worker: resolves when the primary asks it to stop (or SIGTERM reaches it). */
export function workerStopRequested(): Promise<void> | undefined {
  return isClusterWorker() ? clusterWorkerBroker().stopRequested : undefined;
}
