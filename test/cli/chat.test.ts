import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { CLOSE_REFUSED, LIMITS, checkName, checkRoom, createChatServer } from '../../src/cli/chat.js';
import { openClient, type TestClient } from '../examples/client.js';

type Event = { type: string; [key: string]: unknown };

let app: ReturnType<typeof createChatServer>['app'];
let base: string;

before(async () => {
  ({ app } = createChatServer({ statsIntervalMs: 100 }));
  await app.run('127.0.0.1:0');
  base = app.url.replace('http', 'ws');
});
after(() => app.close());

/** A client joined as `name` in `room`, with its events parsed; skips stats unless asked. */
async function join(name: string, room: string): Promise<TestClient & { event(type?: string): Promise<Event> }> {
  const client = await openClient(`${base}/ws?name=${encodeURIComponent(name)}&room=${encodeURIComponent(room)}`);
  const event = async (type?: string): Promise<Event> => {
    for (;;) {
      const parsed = JSON.parse(await client.nextText()) as Event;
      if (type === undefined ? parsed.type !== 'stats' : parsed.type === type) return parsed;
    }
  };
  return Object.assign(client, { event });
}

/** The close code and reason a join attempt ends with. */
async function refused(query: string, headers: Record<string, string> = {}): Promise<[number, string]> {
  const socket = new WebSocket(`${base}/ws?${query}`, { headers });
  return new Promise((resolve, reject) => {
    socket.on('close', (code, reason) => resolve([code, reason.toString()]));
    socket.on('unexpected-response', (_request, response) => resolve([response.statusCode!, '']));
    socket.on('error', reject);
  });
}

describe('the chat demo server', () => {
  it('welcomes with the room and who is in it, announces joins, says and leaves to the room only', async () => {
    const ada = await join('Ada', 'blue');
    const welcome = await ada.event();
    assert.deepEqual(welcome, { type: 'welcome', you: welcome.you, room: 'blue', members: [welcome.you] });
    const bob = await join('  Bob   Smith ', 'Blue');
    const bobWelcome = await bob.event();
    assert.equal((bobWelcome.you as { name: string }).name, 'Bob Smith', 'names are trimmed and spaces collapsed');
    assert.equal(bobWelcome.room, 'blue', 'rooms are lower case');
    assert.deepEqual((await ada.event()).type, 'join');
    const eve = await join('Eve', 'green');
    await eve.event('welcome');

    ada.socket.send(JSON.stringify({ type: 'say', text: '  <b>hi</b>  ' }));
    for (const client of [ada, bob]) {
      const said = await client.event();
      assert.deepEqual([said.type, said.text, (said.from as { name: string }).name], ['say', '<b>hi</b>', 'Ada']);
    }
    eve.socket.send(JSON.stringify({ type: 'say', text: 'green' }));
    assert.equal((await eve.event()).text, 'green', 'nothing from blue reached green before its own message');

    bob.socket.close();
    const left = await ada.event();
    assert.deepEqual([left.type, (left.member as { name: string }).name], ['leave', 'Bob Smith']);
    const stats = await ada.event('stats');
    assert.equal(typeof stats.messagesPerSecond, 'number');
    assert.equal(stats.connections, 2);
    ada.socket.close();
    eve.socket.close();
  });

  it('refuses bad names and rooms with close 4400 and the reason', async () => {
    const long = 'x'.repeat(LIMITS.nameLength + 1);
    assert.deepEqual(await refused('name=&room=a'), [CLOSE_REFUSED, 'pick a name']);
    assert.deepEqual(await refused(`name=${long}&room=a`), [CLOSE_REFUSED, `a name has at most ${LIMITS.nameLength} characters`]);
    assert.deepEqual(await refused('name=a%00b&room=a'), [CLOSE_REFUSED, 'a name cannot contain control characters']);
    assert.deepEqual(await refused('name=a%E2%80%AEb&room=a'), [CLOSE_REFUSED, 'a name cannot contain control characters']);
    assert.deepEqual(await refused('name=ok&room=a%20b'), [CLOSE_REFUSED, 'a room is 1 to 24 letters, digits or dashes']);
    assert.deepEqual(await refused(`name=ok&room=${'r'.repeat(25)}`), [CLOSE_REFUSED, 'a room is 1 to 24 letters, digits or dashes']);
  });

  it('refuses a page of another site (403) and accepts its own origin', async () => {
    const port = new URL(base).port;
    assert.deepEqual(await refused('name=a&room=b', { Origin: 'https://evil.example' }), [403, '']);
    const own = await openClient(`${base}/ws?name=a&room=b`, { headers: { Origin: `http://127.0.0.1:${port}` } });
    own.socket.close();
  });

  it('answers malformed messages with an error, limits the rate, and closes 1009 on a huge message', async () => {
    const client = await join('Flo', 'rate');
    await client.event('welcome');
    for (const bad of ['not json', '{"type":"shout","text":"x"}', '{"type":"say","text":"   "}', JSON.stringify({ type: 'say', text: 'y'.repeat(LIMITS.textLength + 1) })]) {
      client.socket.send(bad);
      assert.equal((await client.event()).type, 'error', bad.slice(0, 30));
    }
    // A burst past the bucket: the first `burst` are said, the rest refused.
    for (let i = 0; i < LIMITS.burst + 5; i++) client.socket.send(JSON.stringify({ type: 'say', text: `m${i}` }));
    const kinds: string[] = [];
    for (let i = 0; i < LIMITS.burst + 5; i++) kinds.push((await client.event()).type);
    assert.ok(kinds.filter((kind) => kind === 'say').length <= LIMITS.burst + 1, kinds.join());
    assert.ok(kinds.includes('error'));
    client.socket.send('z'.repeat(LIMITS.messageBytes + 1));
    assert.equal(await client.closed, 1009);
  });

  it('serves the page with headers that keep injected content inert', async () => {
    const response = await fetch(app.url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await response.text(), /<title>humphrey-ws chat<\/title>/);
    assert.equal((await fetch(`${app.url}/chat.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal((await fetch(`${app.url}/../package.json`)).status, 404);
  });

  it('checkName and checkRoom', () => {
    assert.deepEqual(checkName(' Zoë '), { ok: true, value: 'Zoë' });
    assert.equal(checkName('\u200bhidden').ok, false);
    assert.deepEqual(checkRoom('My-Room'), { ok: true, value: 'my-room' });
    assert.equal(checkRoom('-edge').ok, false);
    assert.equal(checkRoom('<script>').ok, false);
  });
});
