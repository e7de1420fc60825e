// The Redis broker on its own, against a real redis-server: what crosses, what does not, what
// the channels look like in Redis, and what happens when Redis goes away and comes back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisBroker } from '../../src/broker/redis.js';
import { NODE_ID_FACTOR, type BrokerHealthEvent, type BrokerMembership } from '../../src/broker/types.js';
import { RedisServer } from './redis-server.js';
import { ask, client, ServerProcess, until as untilProcess, type Client } from './processes.js';

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface Received {
  topic: string | null;
  payload: Buffer;
  isText: boolean;
}

/** A broker joined by a recording member. */
async function member(url: string, prefix: string): Promise<{
  broker: RedisBroker;
  membership: BrokerMembership;
  received: Received[];
  direct: { id: number; payload: Buffer; isText: boolean }[];
  health: BrokerHealthEvent[];
}> {
  const broker = await RedisBroker.connect({ url, prefix, presenceIntervalMs: 200, maxReconnectDelayMs: 100 });
  const received: Received[] = [];
  const direct: { id: number; payload: Buffer; isText: boolean }[] = [];
  const health: BrokerHealthEvent[] = [];
  broker.onHealth((event) => health.push(event));
  const membership = broker.join(
    (topic, payload, isText) => received.push({ topic, payload: Buffer.from(payload), isText }),
    { direct: (id, payload, isText) => direct.push({ id, payload: Buffer.from(payload), isText }) },
  );
  return { broker, membership, received, direct, health };
}

test('Redis broker: broadcasts, topics and directed sends cross once, bytes intact, never back to the sender', async () => {
  const redis = await RedisServer.start();
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => member(redis.url, 'cross')));
  try {
    // Node numbers come from a counter in Redis: distinct.
    assert.equal(new Set([a!.broker.node, b!.broker.node, c!.broker.node]).size, 3);
    assert.ok([a, b, c].every((m) => m!.broker.stats().connected));

    b!.membership.topicOpened!('room');
    await until(async () => (await redis.command('PUBSUB', 'NUMSUB', 'cross:topic:room'))[1] === '1', 'b listens to room');

    const binary = Buffer.alloc(70_000);
    for (let i = 0; i < binary.length; i++) binary[i] = i % 251;
    a!.membership.publish(null, Buffer.from('hello all'), true);
    a!.membership.publish('room', binary, false);
    a!.membership.publish('nobody-listens', Buffer.from('lost in space'), true);
    await until(() => b!.received.length === 2 && c!.received.length === 1, 'deliveries');
    await sleep(100);

    assert.deepEqual(a!.received, [], 'the sender does not get its own messages back');
    assert.deepEqual(b!.received.map((r) => [r.topic, r.isText, r.payload.length]), [[null, true, 9], ['room', false, 70_000]]);
    assert.ok(b!.received[1]!.payload.equals(binary), 'binary payload crosses unchanged');
    assert.deepEqual(c!.received.map((r) => [r.topic, String(r.payload)]), [[null, 'hello all']]);
    assert.equal(a!.broker.stats().published, 3);
    assert.equal(c!.broker.stats().received, 1, 'c listens to no topic and receives no topic message');

    // A directed send reaches the owner of the id only.
    const id = c!.broker.node * NODE_ID_FACTOR + 7;
    assert.equal(a!.membership.sendTo!(id, Buffer.from('just you'), true), true);
    await until(() => c!.direct.length === 1, 'direct');
    assert.deepEqual(c!.direct.map((d) => [d.id, String(d.payload), d.isText]), [[id, 'just you', true]]);
    assert.deepEqual(b!.direct, []);
    // To a node nobody is: Redis reports no receiver, which counts as dropped.
    a!.membership.sendTo!((c!.broker.node + 1000) * NODE_ID_FACTOR + 1, Buffer.from('?'), true);
    await until(() => a!.broker.stats().dropped === 1, 'dropped direct');

    // The last local subscriber leaves: the process stops listening to the channel.
    b!.membership.topicClosed!('room');
    await until(async () => (await redis.command('PUBSUB', 'NUMSUB', 'cross:topic:room'))[1] === '0', 'unsubscribed');
    assert.deepEqual((await redis.command('PUBSUB', 'CHANNELS', 'cross:topic:*')), []);
  } finally {
    await Promise.all([a, b, c].map((m) => m!.broker.close()));
    await redis.stop();
  }
});

test('Redis broker: connection counts of the other processes', async () => {
  const redis = await RedisServer.start();
  const a = await member(redis.url, 'counts');
  const b = await member(redis.url, 'counts');
  try {
    for (let i = 1; i <= 3; i++) a.membership.connectionOpened!(a.broker.node * NODE_ID_FACTOR + i);
    b.membership.connectionOpened!(b.broker.node * NODE_ID_FACTOR + 1);
    await until(() => b.membership.remoteConnectionCount!() === 3 && a.membership.remoteConnectionCount!() === 1, 'counts');
    a.membership.connectionClosed!(a.broker.node * NODE_ID_FACTOR + 1);
    await until(() => b.membership.remoteConnectionCount!() === 2, 'count after a close');
    // A newcomer learns the others' counts without waiting for their next renewal.
    const c = await member(redis.url, 'counts');
    await until(() => c.membership.remoteConnectionCount!() === 3, 'newcomer counts', 1000);
    await a.broker.close();
    await until(() => b.membership.remoteConnectionCount!() === 0 && c.membership.remoteConnectionCount!() === 1, 'a left');
    await c.broker.close();
  } finally {
    await a.broker.close();
    await b.broker.close();
    await redis.stop();
  }
});

test('Redis broker: Redis killed and restarted: drops are counted and reported, the link and subscriptions come back by themselves', async () => {
  const redis = await RedisServer.start();
  const a = await member(redis.url, 'outage');
  const b = await member(redis.url, 'outage');
  try {
    b.membership.topicOpened!('room');
    await until(async () => (await redis.command('PUBSUB', 'NUMSUB', 'outage:topic:room'))[1] === '1', 'subscribed');
    a.membership.publish('room', Buffer.from('before'), true);
    await until(() => b.received.length === 1, 'before');

    await redis.stop();
    await until(() => !a.broker.stats().connected && !b.broker.stats().connected, 'disconnected');
    assert.ok(a.health.some((e) => e.type === 'disconnected'));
    // While Redis is away, publishes return at once and are counted, not queued.
    const started = Date.now();
    for (let i = 0; i < 100; i++) a.membership.publish('room', Buffer.from(`during ${i}`), true);
    assert.ok(Date.now() - started < 1000);
    assert.equal(a.broker.stats().dropped, 100);
    await until(() => a.health.some((e) => e.type === 'dropped'), 'dropped event', 3000);
    const reported = a.health.filter((e) => e.type === 'dropped').reduce((sum, e) => sum + (e as { count: number }).count, 0);
    assert.equal(reported, 100);

    await redis.restart();
    await until(() => a.broker.stats().connected && b.broker.stats().connected, 'reconnected');
    assert.equal(a.health.at(-1)!.type, 'connected');
    // Neither was listening while Redis was away: each reports the gap once, before the link is
    // reported up again, with the topics it listens to.
    for (const [m, topics] of [[a, []], [b, ['room']]] as const) {
      const gaps = m.health.filter((e) => e.type === 'gap');
      assert.equal(gaps.length, 1);
      assert.equal(m.broker.stats().gaps, 1);
      const gap = gaps[0] as Extract<BrokerHealthEvent, { type: 'gap' }>;
      assert.deepEqual(gap.topics, topics);
      assert.ok(gap.since <= gap.until);
      assert.ok(m.health.indexOf(gap) > m.health.findIndex((e) => e.type === 'disconnected'));
      assert.ok(m.health.indexOf(gap) < m.health.map((e) => e.type).lastIndexOf('connected'));
    }
    // The topic subscription was restored by the client, without the app doing anything.
    assert.deepEqual(await redis.command('PUBSUB', 'NUMSUB', 'outage:topic:room'), ['outage:topic:room', '1']);
    a.membership.publish('room', Buffer.from('after'), true);
    a.membership.publish(null, Buffer.from('after all'), true);
    await until(() => b.received.length === 3, 'after');
    assert.deepEqual(b.received.map((r) => String(r.payload)), ['before', 'after', 'after all']);
    // Redis came back empty: the node counter is raised again above the numbers in use.
    await until(async () => Number((await redis.command('GET', 'outage:nodes'))[0]) >= Math.max(a.broker.node, b.broker.node), 'counter claimed');
    const c = await RedisBroker.connect({ url: redis.url, prefix: 'outage' });
    assert.ok(c.node > Math.max(a.broker.node, b.broker.node));
    await c.close();
  } finally {
    await a.broker.close();
    await b.broker.close();
    await redis.stop();
  }
});

test('Redis broker: subscriber links cut while another process publishes: the receivers report the gap with their topics; what arrives is in order, once, one run missing at most', async () => {
  const redis = await RedisServer.start();
  const a = await member(redis.url, 'gap');
  const b = await member(redis.url, 'gap');
  let sent = 0;
  const ticker = setInterval(() => a.membership.publish('room', Buffer.from(String(sent++)), true), 2);
  try {
    b.membership.topicOpened!('room');
    await until(async () => (await redis.command('PUBSUB', 'NUMSUB', 'gap:topic:room'))[1] === '1', 'subscribed');
    await until(() => b.received.length > 10, 'traffic');
    // Only the subscriber links are cut: Redis and the publishing link stay up, so the publisher
    // cannot tell that b is away. b can, and says so once it listens again.
    await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await until(() => b.broker.stats().gaps === 1 && a.broker.stats().gaps === 1, 'gaps reported');
    const resumedFrom = b.received.length;
    await until(() => b.received.length > resumedFrom + 10, 'traffic after the resubscription');
    clearInterval(ticker);
    await until(() => b.received.at(-1) !== undefined && String(b.received.at(-1)!.payload) === String(sent - 1), 'the last message');

    const gap = b.health.find((e) => e.type === 'gap') as Extract<BrokerHealthEvent, { type: 'gap' }>;
    assert.deepEqual(gap.topics, ['room']);
    assert.ok(gap.since <= gap.until);
    assert.deepEqual((a.health.find((e) => e.type === 'gap') as Extract<BrokerHealthEvent, { type: 'gap' }>).topics, []);
    assert.equal(a.broker.stats().published, sent);
    // In order and each at most once; what is missing is one run of consecutive messages (those
    // published while b was away), not scattered losses.
    const numbers = b.received.map((r) => Number(String(r.payload)));
    assert.ok(numbers.every((n, i) => i === 0 || n > numbers[i - 1]!), 'in order, no duplicates');
    const got = new Set(numbers);
    const missing = Array.from({ length: sent }, (_, i) => i).filter((i) => !got.has(i));
    if (missing.length > 0) assert.equal(missing.at(-1)! - missing[0]! + 1, missing.length, `one run missing: ${missing.join(',')}`);
  } finally {
    clearInterval(ticker);
    await a.broker.close();
    await b.broker.close();
    await redis.stop();
  }
});

test('Redis broker: connect rejects with WS_ERR_BROKER when Redis does not answer in time', async () => {
  const redis = await RedisServer.start();
  const url = redis.url;
  await redis.stop();
  const started = Date.now();
  await assert.rejects(RedisBroker.connect({ url, connectTimeoutMs: 300 }), (error: Error & { code?: string }) => error.code === 'WS_ERR_BROKER');
  assert.ok(Date.now() - started < 3000);
});

test('Redis broker: one app at a time', async () => {
  const redis = await RedisServer.start();
  const broker = await RedisBroker.connect({ url: redis.url });
  try {
    const first = broker.join(() => {});
    assert.throws(() => broker.join(() => {}), (error: Error & { code?: string }) => error.code === 'WS_ERR_INVALID_ARGUMENT');
    await first.leave();
    broker.join(() => {});
  } finally {
    await broker.close();
    await redis.stop();
  }
});

test('humphrey-ws/redis is a subpath export of the built package, and the core never loads ioredis', async () => {
  const { readFileSync } = await import('node:fs');
  const { dirname, join, resolve } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const root = fileURLToPath(new URL('../../', import.meta.url));
  // Through the package's own name, as a user imports it (tests run after `npm run build`).
  const entry = await import('humphrey-ws/redis');
  assert.equal(typeof entry.RedisBroker.connect, 'function');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  assert.deepEqual(pkg.dependencies ?? {}, {});
  assert.equal(pkg.peerDependenciesMeta.ioredis.optional, true);
  // Every module reachable from the core entry, by static imports: none is ioredis.
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)) {
      const spec = match[1]!;
      assert.notEqual(spec, 'ioredis', `${file} imports ioredis`);
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
    }
  };
  visit(join(root, 'dist/index.js'));
  assert.ok(seen.size > 10, `walked ${seen.size} modules`);
});

// ---------------------------------------------------------------------------------------------
// Server processes on one Redis


test('three server processes on one Redis: broadcasts and topics reach every subscribed client exactly once, in order; send(id) crosses; no topic traffic where nobody listens', async () => {
  const redis = await RedisServer.start();
  const servers = await Promise.all([1, 2, 3].map(() => ServerProcess.start({ REDIS_URL: redis.url })));
  const clients: Client[] = [];
  try {
    for (const server of servers) for (let i = 0; i < 2; i++) clients.push(await client(server.url));
    assert.equal(new Set(clients.map((c) => c.pid)).size, 3);
    assert.equal(new Set(clients.map((c) => c.id)).size, 6, 'ids unique across processes');
    await untilProcess(async () => (await ask(clients[0]!, 'count', 'count ')) === 'count 6', 'count across processes');

    // One publisher per process, 40 broadcasts each, sent back to back.
    const publishers = [clients[0]!, clients[2]!, clients[4]!];
    const N = 40;
    for (let i = 0; i < N; i++) for (const [p, publisher] of publishers.entries()) publisher.ws.send(`b${p} ${i}`);
    await untilProcess(() => clients.every((c) => c.received.filter((m) => m.startsWith('b')).length >= 3 * N), 'broadcasts');
    await sleep(200);
    for (const c of clients) {
      const got = c.received.filter((m) => m.startsWith('b'));
      assert.equal(got.length, 3 * N, 'each broadcast once');
      for (let p = 0; p < 3; p++) assert.deepEqual(got.filter((m) => m.startsWith(`b${p} `)), Array.from({ length: N }, (_, i) => `b${p} ${i}`));
    }

    // Topic "room": subscribers on the first two processes only.
    const subscribers = [clients[0]!, clients[1]!, clients[2]!];
    for (const c of subscribers) await ask(c, 'sub room', 'subscribed room true');
    assert.deepEqual(await redis.command('PUBSUB', 'NUMSUB', 'humphrey-ws:topic:room'), ['humphrey-ws:topic:room', '2']);
    const third = clients[4]!;
    const receivedBefore = JSON.parse((await ask(third, 'stats', 'stats ')).slice(6)).received as number;
    const topicPublishers = [clients[1]!, clients[5]!];
    for (let i = 0; i < 30; i++) for (const [p, publisher] of topicPublishers.entries()) publisher.ws.send(`pub room t${p} ${i}`);
    const expected = (c: Client, p: number): string[] => (c === topicPublishers[p] ? [] : Array.from({ length: 30 }, (_, i) => `t${p} ${i}`));
    await untilProcess(() => subscribers.every((c) => c.received.filter((m) => m.startsWith('t')).length === expected(c, 0).length + expected(c, 1).length), 'topic');
    await sleep(200);
    for (const c of subscribers) for (let p = 0; p < 2; p++) assert.deepEqual(c.received.filter((m) => m.startsWith(`t${p} `)), expected(c, p));
    for (const c of clients.slice(3)) assert.deepEqual(c.received.filter((m) => m.startsWith('t')), []);
    // The third process is not subscribed to the topic's channel: Redis sent it nothing.
    const receivedAfter = JSON.parse((await ask(third, 'stats', 'stats ')).slice(6)).received as number;
    assert.equal(receivedAfter, receivedBefore);

    // send(id) to a client of another process, once.
    const target = clients[5]!;
    assert.equal(await ask(clients[0]!, `to ${target.id} psst`, 'sent '), 'sent {"queued":0,"skipped":0}');
    await untilProcess(() => target.received.includes('psst'), 'directed send');
    await sleep(100);
    assert.equal(clients.flatMap((c) => c.received).filter((m) => m === 'psst').length, 1);
  } finally {
    for (const c of clients) c.ws.terminate();
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  }
});

test('Redis stopped and restarted during traffic: servers stay up, local traffic goes on, cross-process traffic resumes, losses are reported', async () => {
  const redis = await RedisServer.start();
  const servers = await Promise.all([1, 2].map(() => ServerProcess.start({ REDIS_URL: redis.url })));
  const [a1, a2] = [await client(servers[0]!.url), await client(servers[0]!.url)];
  const b1 = await client(servers[1]!.url);
  let sent = 0;
  const ticker = setInterval(() => a1.ws.send(`b ${sent++}`), 5);
  try {
    await untilProcess(() => b1.received.length > 20, 'traffic crosses');
    await redis.stop();
    // Every message from this number on was sent after Redis was gone.
    const atStop = sent;
    const localNumbers = (): number[] => a2.received.filter((m) => m.startsWith('b ')).map((m) => Number(m.slice(2)));
    await untilProcess(() => servers[0]!.linesWith('health').some((l) => l.health === 'disconnected'), 'disconnected reported');
    // Local delivery goes on while Redis is away.
    await untilProcess(() => localNumbers().length > atStop + 20, 'local traffic');
    await untilProcess(() => servers[0]!.linesWith('health').some((l) => l.health === 'dropped'), 'drops reported');
    // What the server handled from atStop until now (a2 has it) met no Redis: it must never
    // cross, not even after Redis is back (dropped, not queued). Checked at the end.
    const handledInOutage = localNumbers().filter((n) => n >= atStop);

    await redis.restart();
    const linkUp = (s: ServerProcess): boolean =>
      s.linesWith('health').filter((l) => l.health === 'connected' || l.health === 'disconnected').at(-1)?.health === 'connected';
    await untilProcess(() => servers.every(linkUp), 'reconnected');
    // Neither server was listening while Redis was away: each says so (before the link is up).
    assert.ok(servers.every((s) => s.linesWith('health').some((l) => l.health === 'gap')), 'gaps reported');
    const resumedFrom = b1.received.length;
    await untilProcess(() => b1.received.length > resumedFrom + 20, 'cross-process traffic resumes');
    clearInterval(ticker);
    // Wait for what is still in flight (a loaded machine may take a while), with a deadline,
    // instead of a fixed pause: local delivery first, then until every message crossed or was
    // counted as dropped.
    await untilProcess(() => a2.received.filter((m) => m.startsWith('b ')).length >= sent, 'local delivery of everything sent');
    let stats: { dropped: number; published: number };
    let crossed: number;
    const settleBy = Date.now() + 10_000;
    for (;;) {
      stats = JSON.parse((await ask(a1, 'stats', 'stats ')).slice(6)) as { dropped: number; published: number };
      crossed = b1.received.filter((m) => m.startsWith('b ')).length;
      if (crossed + stats.dropped >= sent || Date.now() > settleBy) break;
      await sleep(100);
    }

    // Everything a1 sent reached a2 (local); b1 got the rest, minus what was reported lost.
    assert.equal(a2.received.filter((m) => m.startsWith('b ')).length, sent);
    assert.ok(stats.dropped > 0, 'drops counted');
    assert.ok(crossed + stats.dropped >= sent, `lost without a report: sent ${sent}, crossed ${crossed}, dropped ${stats.dropped}`);
    assert.ok(crossed < sent);
    // In order, each at most once.
    const numbers = b1.received.filter((m) => m.startsWith('b ')).map((m) => Number(m.slice(2)));
    assert.ok(numbers.every((n, i) => i === 0 || n > numbers[i - 1]!), 'in order, no duplicates');
    // Nothing handled during the outage crossed.
    assert.ok(handledInOutage.length > 20);
    const crossedNumbers = new Set(numbers);
    assert.deepEqual(handledInOutage.filter((n) => crossedNumbers.has(n)), [], 'nothing crosses while Redis is away');
    // The reported drop events add up to the counter (they come at most once a second: wait for
    // the last one, with a deadline).
    const reportedDrops = (): number =>
      servers[0]!.linesWith('health').filter((l) => l.health === 'dropped').reduce((sum, l) => sum + (l.count as number), 0);
    await untilProcess(async () => {
      stats = JSON.parse((await ask(a1, 'stats', 'stats ')).slice(6)) as { dropped: number; published: number };
      return reportedDrops() >= stats.dropped;
    }, 'every drop reported');
    assert.equal(reportedDrops(), stats.dropped);
    assert.ok(servers.every((s) => s.exited === null), 'servers stayed up');
  } finally {
    clearInterval(ticker);
    for (const c of [a1, a2, b1]) c.ws.terminate();
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  }
});
