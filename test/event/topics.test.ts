import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Topics, type TopicMember } from '../../src/event/topics.js';

function member(): TopicMember & { name: string } {
  return { name: Math.random().toString(36).slice(2), topics: null };
}

test('subscribe and unsubscribe keep both directions in step', () => {
  const topics = new Topics<TopicMember>();
  const a = member();
  const b = member();
  assert.equal(topics.subscribe(a, 'news'), true);
  assert.equal(topics.subscribe(a, 'news'), false, 'second subscribe is a no-op');
  assert.equal(topics.subscribe(b, 'news'), true);
  assert.equal(topics.subscribe(a, 'sport'), true);
  assert.deepEqual([...topics.subscribers('news')!], [a, b]);
  assert.deepEqual([...a.topics!].sort(), ['news', 'sport']);
  assert.equal(topics.count('news'), 2);
  assert.equal(topics.isSubscribed(b, 'sport'), false);

  assert.equal(topics.unsubscribe(a, 'news'), true);
  assert.equal(topics.unsubscribe(a, 'news'), false);
  assert.deepEqual([...topics.subscribers('news')!], [b]);
  assert.deepEqual([...a.topics!], ['sport']);
});

test('a topic without subscribers is forgotten', () => {
  const opened: string[] = [];
  const closed: string[] = [];
  const topics = new Topics<TopicMember>({
    onTopicOpened: (topic) => opened.push(topic),
    onTopicClosed: (topic) => closed.push(topic),
  });
  const a = member();
  const b = member();
  topics.subscribe(a, 't');
  topics.subscribe(b, 't');
  topics.unsubscribe(a, 't');
  assert.equal(topics.size, 1);
  topics.unsubscribe(b, 't');
  assert.equal(topics.size, 0);
  assert.equal(topics.subscribers('t'), undefined);
  assert.equal(topics.count('t'), 0);
  assert.deepEqual(opened, ['t']);
  assert.deepEqual(closed, ['t']);
});

test('removeAll drops a member from every topic (disconnect cleanup)', () => {
  const topics = new Topics<TopicMember>();
  const a = member();
  const b = member();
  for (let i = 0; i < 100; i++) topics.subscribe(a, `topic-${i}`);
  topics.subscribe(b, 'topic-5');
  topics.removeAll(a);
  assert.equal(a.topics, null);
  assert.equal(topics.size, 1);
  assert.deepEqual([...topics.names()], ['topic-5']);
  assert.deepEqual([...topics.subscribers('topic-5')!], [b]);
  topics.removeAll(a);
  topics.removeAll(b);
  assert.equal(topics.size, 0);
});

test('unsubscribe of a member that never subscribed is harmless', () => {
  const topics = new Topics<TopicMember>();
  const a = member();
  assert.equal(topics.unsubscribe(a, 'x'), false);
  assert.equal(topics.isSubscribed(a, 'x'), false);
  topics.removeAll(a);
  assert.equal(topics.size, 0);
});
