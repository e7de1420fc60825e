// The cluster broker with real processes: `app.run({ workers: 2 })` in a fixture script, clients
// spread over the workers by node:cluster, relaying through the primary over IPC.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ask, client, ServerProcess, until, type Client } from './processes.js';
import { nodeOf } from '../../src/broker/types.js';

/** Connect clients until they sit on at least two workers (node:cluster hands them out round-robin). */
async function spreadClients(url: string, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < count; i++) clients.push(await client(url));
  return clients;
}

test('cluster: --workers 2 broadcasts, topics and send(id) reach clients on both workers, exactly once, in order', async () => {
  const server = await ServerProcess.start({ WORKERS: '2' });
  const clients: Client[] = [];
  try {
    clients.push(...(await spreadClients(server.url, 8)));
    const pids = new Set(clients.map((c) => c.pid));
    assert.equal(pids.size, 2, 'clients on both workers');
    assert.equal(new Set(clients.map((c) => c.id)).size, 8, 'ids unique across workers');
    assert.equal(new Set(clients.map((c) => nodeOf(c.id))).size, 2, 'ids carry the worker');

    // Counts cover every worker.
    await until(async () => (await ask(clients[0]!, 'count', 'count ')) === 'count 8', 'cluster-wide count');

    // Two publishers, one per worker, 50 broadcasts each, sent without waiting.
    const publishers = [clients.find((c) => c.pid === [...pids][0])!, clients.find((c) => c.pid === [...pids][1])!];
    const N = 50;
    for (let i = 0; i < N; i++) for (const [p, publisher] of publishers.entries()) publisher.ws.send(`b${p} ${i}`);
    await until(() => clients.every((c) => c.received.filter((m) => m.startsWith('b')).length >= 2 * N), 'broadcasts');
    await sleep(200);
    for (const c of clients) {
      const got = c.received.filter((m) => m.startsWith('b'));
      assert.equal(got.length, 2 * N, 'nothing lost, nothing twice');
      for (let p = 0; p < 2; p++) {
        assert.deepEqual(got.filter((m) => m.startsWith(`b${p} `)), Array.from({ length: N }, (_, i) => `b${p} ${i}`));
      }
    }

    // A topic: subscribers on both workers, the publisher excluded.
    const subscribers = clients.slice(0, 4);
    for (const c of subscribers) await ask(c, 'sub room', 'subscribed room');
    const publisher = clients[7]!;
    for (let i = 0; i < 20; i++) publisher.ws.send(`pub room t ${i}`);
    await until(() => subscribers.every((c) => c.received.filter((m) => m.startsWith('t ')).length === 20), 'topic messages');
    await sleep(100);
    for (const c of clients.slice(4)) assert.deepEqual(c.received.filter((m) => m.startsWith('t ')), []);
    for (const c of subscribers) assert.deepEqual(c.received.filter((m) => m.startsWith('t ')), Array.from({ length: 20 }, (_, i) => `t ${i}`));

    // send(id) to a client on the other worker.
    const from = clients[0]!;
    const to = clients.find((c) => c.pid !== from.pid)!;
    assert.equal(await ask(from, `to ${to.id} just for you`, 'sent '), 'sent {"queued":0,"skipped":0}');
    await until(() => to.received.includes('just for you'), 'directed send');
    assert.equal(clients.filter((c) => c.received.includes('just for you')).length, 1);
  } finally {
    for (const c of clients) c.ws.terminate();
    await server.stop();
  }
});

test('cluster: a killed worker is replaced, its clients are reported once; SIGTERM closes every client with 1001', async () => {
  const server = await ServerProcess.start({ WORKERS: '2' });
  const clients = await spreadClients(server.url, 6);
  try {
    const victim = clients[0]!.pid;
    const victimIds = clients.filter((c) => c.pid === victim).map((c) => c.id).sort();
    const survivors = clients.filter((c) => c.pid !== victim);
    assert.ok(victimIds.length > 0 && survivors.length > 0);
    // The primary learns of connections within a turn or two; make sure it has.
    await until(async () => (await ask(survivors[0]!, 'count', 'count ')) === 'count 6', 'count before');

    process.kill(victim, 'SIGKILL');
    await until(() => server.linesWith('exit').length === 1, 'exit report');
    const exit = server.linesWith('exit')[0]!.exit as { node: number; pid: number; signal: string; connectionIds: number[]; replaced: boolean };
    assert.equal(exit.pid, victim);
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.replaced, true);
    assert.deepEqual([...exit.connectionIds].sort(), victimIds);
    for (const c of clients.filter((c) => c.pid === victim)) await c.closed;

    // The survivors are untouched, the counts drop, and a new worker takes connections.
    await until(async () => (await ask(survivors[0]!, 'count', 'count ')) === `count ${survivors.length}`, 'count after');
    const fresh: Client[] = [];
    await until(async () => {
      const c = await client(server.url);
      fresh.push(c);
      return c.pid !== victim && !survivors.some((s) => s.pid === c.pid);
    }, 'a replacement worker');
    const newcomer = fresh.at(-1)!;
    survivors[0]!.ws.send('b hello again');
    await until(() => newcomer.received.includes('b hello again'), 'broadcast reaches the replacement');
    await sleep(300);
    assert.equal(server.linesWith('exit').length, 1, 'reported once');

    // SIGTERM to the primary: every client gets 1001, the primary ends.
    const everyone = [...survivors, ...fresh];
    await server.stop('SIGTERM');
    const codes = await Promise.all(everyone.map((c) => c.closed));
    assert.deepEqual(new Set(codes.map((c) => c.code)), new Set([1001]));
    assert.equal(server.exited?.signal, 'SIGTERM');
    assert.equal(server.linesWith('exit').length, 3, 'the two workers stopped at shutdown are reported too');
    assert.ok(server.linesWith('exit').slice(1).every((line) => (line.exit as { replaced: boolean }).replaced === false));
  } finally {
    for (const c of clients) c.ws.terminate();
    await server.stop('SIGKILL');
  }
});
