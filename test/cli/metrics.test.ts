// --metrics-port on the CLI servers: real clients, /metrics scraped over HTTP, exact figures.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { openClient } from '../examples/client.js';
import { startProcess, type RunningProcess } from '../examples/spawn.js';
import { rawExchange } from '../helpers/server.js';
import { parseExposition, scrape, seriesOf, valueOf, type Family } from '../helpers/prometheus.js';
import { BIN, runCliAsync } from './run.js';

const P = 'humphrey_ws_';

function metricsUrl(server: RunningProcess): string {
  const match = /^metrics on (\S+)$/m.exec(server.output());
  assert.ok(match, `no "metrics on" line in ${server.output()}`);
  return match[1]!;
}

/** Scrape until `done` holds of the figures (each scrape parsed strictly); the last figures. */
async function scrapeUntil(url: string, done: (families: Map<string, Family>) => boolean): Promise<Map<string, Family>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { status, body } = await scrape(url);
    assert.equal(status, 200);
    const families = parseExposition(body);
    if (done(families) || Date.now() > deadline) return families;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('--metrics-port', () => {
  for (const mode of ['sync', 'async']) {
    it(`echo --mode ${mode}: the figures of real traffic at /metrics`, async () => {
      const server = await startProcess([BIN, 'echo', '--port', '0', '--metrics-port', '0', '--mode', mode]);
      try {
        const url = metricsUrl(server);
        const client = await openClient(server.url, { perMessageDeflate: false });
        client.socket.send('one');
        assert.equal(await client.nextText(), 'one');
        client.socket.send(Buffer.from([1, 2]));
        assert.equal((await client.next()).data.length, 2);
        const closed = once(client.socket, 'close');
        client.socket.close(1000);
        await closed;
        const plain = await rawExchange(Number(new URL(server.url).port), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        assert.equal(plain.status, 426);

        const families = await scrapeUntil(url, (f) => valueOf(f, `${P}open_connections`) === 0 && Object.keys(seriesOf(f, `${P}upgrades_refused_total`)).length > 0);
        assert.equal(valueOf(families, `${P}open_connections`), 0);
        assert.equal(valueOf(families, `${P}connections_opened_total`), 1);
        assert.equal(valueOf(families, `${P}messages_received_total`), 2);
        assert.equal(valueOf(families, `${P}messages_sent_total`), 2);
        assert.equal(valueOf(families, `${P}received_bytes_total`), 6 + 3 + 6 + 2 + 6 + 2);
        assert.equal(valueOf(families, `${P}sent_bytes_total`), 2 + 3 + 2 + 2 + 2 + 2);
        assert.deepEqual(seriesOf(families, `${P}closes_total`), { 1000: 1 });
        assert.deepEqual(seriesOf(families, `${P}upgrades_refused_total`), { 426: 1 });
        assert.equal((await scrape(url.replace('/metrics', '/other'))).status, 404);
      } finally {
        assert.equal(await server.stop(), 0);
      }
    });
  }

  it('broadcast: broadcasts and the messages they sent', async () => {
    const server = await startProcess([BIN, 'broadcast', '--port', '0', '--metrics-port', '0']);
    try {
      const url = metricsUrl(server);
      const clients = [await openClient(server.url), await openClient(server.url), await openClient(server.url)];
      clients[0]!.socket.send('to all');
      for (const client of clients) assert.equal(await client.nextText(), 'to all');
      const families = await scrapeUntil(url, () => true);
      assert.equal(valueOf(families, `${P}open_connections`), 3);
      assert.equal(valueOf(families, `${P}broadcasts_total`), 1);
      assert.equal(valueOf(families, `${P}messages_received_total`), 1);
      assert.equal(valueOf(families, `${P}messages_sent_total`), 3);
      assert.equal(valueOf(families, `${P}backpressure_dropped_total`), 0);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it('demo: the chat\'s figures on a port of their own and at /metrics on its App', async () => {
    const server = await startProcess([BIN, 'demo', '--port', '0', '--metrics-port', '0']);
    try {
      const client = await openClient(`${server.url.replace('http', 'ws')}/ws?name=Ada&room=blue`);
      assert.equal(JSON.parse(await client.nextText()).type, 'welcome');
      for (const url of [metricsUrl(server), `${server.url}/metrics`]) {
        const families = await scrapeUntil(url, () => true);
        assert.equal(valueOf(families, `${P}open_connections`), 1, url);
        assert.equal(valueOf(families, `${P}publishes_total`), 1, url); // the join announced to the room
      }
      client.socket.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it('is refused with --workers (each worker counts only its own)', async () => {
    const result = await runCliAsync(['broadcast', '--port', '0', '--metrics-port', '0', '--workers', '2']);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--metrics-port cannot be combined with --workers/);
  });
});
