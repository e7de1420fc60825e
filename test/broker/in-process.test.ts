// The in-process broker on its own: members in one process, synchronous delivery.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessBroker } from '../../src/broker/in-process.js';
import { NODE_ID_FACTOR, nodeOf } from '../../src/broker/types.js';

test('in-process broker: broadcasts reach the others, publishes only members listening to the topic, sends only the owner', async () => {
  const broker = new InProcessBroker();
  const got: string[] = [];
  const join = (name: string) =>
    broker.join((topic, payload, isText) => got.push(`${name} ${topic} ${String(payload)} ${isText}`), {
      direct: (id, payload) => got.push(`${name} direct ${nodeOf(id)}/${id % NODE_ID_FACTOR} ${String(payload)}`),
    });
  const a = join('a');
  const b = join('b');
  const c = join('c');
  assert.equal(broker.size, 3);
  assert.deepEqual([a.node, b.node, c.node], [1, 2, 3]);
  b.topicOpened!('room');
  a.publish(null, Buffer.from('all'), true);
  a.publish('room', Buffer.from('room'), false);
  b.topicClosed!('room');
  a.publish('room', Buffer.from('nobody'), true);
  assert.equal(a.sendTo!(c.node * NODE_ID_FACTOR + 5, Buffer.from('hi'), true), true);
  assert.equal(a.sendTo!(9 * NODE_ID_FACTOR + 1, Buffer.from('nobody'), true), false);
  assert.deepEqual(got, ['b null all true', 'c null all true', 'b room room false', 'c direct 3/5 hi']);
  assert.deepEqual(broker.stats(), { connected: true, published: 4, received: 4, dropped: 1, topics: 0, gaps: 0 });

  a.connectionOpened!(a.node * NODE_ID_FACTOR + 1);
  a.connectionOpened!(a.node * NODE_ID_FACTOR + 2);
  c.connectionOpened!(c.node * NODE_ID_FACTOR + 1);
  assert.equal(b.remoteConnectionCount!(), 3);
  assert.equal(a.remoteConnectionCount!(), 1);
  await c.leave();
  assert.equal(b.remoteConnectionCount!(), 2);
  assert.equal(broker.size, 2);
  await broker.close();
  assert.equal(broker.size, 0);
});

test('in-process broker between two apps: ids unique across them, send(id) and connectionCount reach across', async () => {
  const { AsyncWebSocketApp } = await import('../../src/index.js');
  const { default: WebSocket } = await import('ws');
  const broker = new InProcessBroker();
  const ids: number[] = [];
  const one = new AsyncWebSocketApp().withBroker(broker).withConnectHandler((stream) => void ids.push(stream.id));
  const two = new AsyncWebSocketApp().withBroker(broker).withConnectHandler((stream) => void ids.push(stream.id));
  await Promise.all([one.run(), two.run()]);
  const received: string[] = [];
  const open = (url: string) =>
    new Promise<InstanceType<typeof WebSocket>>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('message', (data) => received.push(String(data)));
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const a = await open(one.url);
  const b = await open(two.url);
  try {
    const deadline = Date.now() + 5000;
    while (ids.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(new Set(ids).size, 2);
    assert.deepEqual(ids.map(nodeOf).sort(), [1, 2]);
    assert.equal(one.sender().connectionCount, 2);
    assert.equal(one.connectionCount, 1, 'app.connectionCount stays local');
    const idOnTwo = ids.find((id) => nodeOf(id) === 2)!;
    assert.deepEqual(one.sender().send(idOnTwo, 'across'), { queued: 0, skipped: 0 });
    assert.deepEqual(one.sender().send(7 * NODE_ID_FACTOR + 1, 'nobody'), { queued: 0, skipped: 1 });
    while (received.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(received, ['across']);
  } finally {
    a.close();
    b.close();
    await Promise.all([one.close(), two.close()]);
  }
});
