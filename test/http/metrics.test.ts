// Metrics for both architectures: real clients drive traffic, /metrics is scraped over HTTP
// and parsed strictly, and every counter is checked to the exact value the traffic implies.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  App,
  AsyncWebSocketApp,
  Metrics,
  METRICS_CONTENT_TYPE,
  formatMetrics,
  metricsHandler,
  metricsRoute,
  rejectUpgrade,
  websocketHandler,
  type MetricsSource,
} from '../../src/index.js';
import { openClient } from '../examples/client.js';
import { rawExchange, rawUpgrade, upgradeRequest, waitFor } from '../helpers/server.js';
import { parseExposition, scrape, seriesOf, valueOf, type Family } from '../helpers/prometheus.js';

const P = 'humphrey_ws_';
const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A node:http server answering every request with `metricsHandler(source)`; its URL. */
async function metricsServer(source: MetricsSource): Promise<string> {
  const server: Server = createServer(metricsHandler(source));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

async function scrapeParsed(url: string): Promise<Map<string, Family>> {
  const { status, contentType, body } = await scrape(url);
  assert.equal(status, 200);
  assert.equal(contentType, METRICS_CONTENT_TYPE);
  return parseExposition(body);
}

/** A ws client without compression (so every frame's size is known), closed by us with `code`. */
async function closeClient(socket: WebSocket, code: number): Promise<void> {
  const closed = once(socket, 'close');
  socket.close(code);
  await closed;
}

// Frame sizes: a client frame has a 4-byte mask; payloads here are under 126 bytes.
const clientFrame = (payload: number): number => 2 + 4 + payload;
const serverFrame = (payload: number): number => 2 + payload;

describe('metrics of the event app', () => {
  it('counts connections, refusals, messages, bytes, broadcasts, publishes and close codes exactly', async () => {
    const app = new AsyncWebSocketApp(undefined, {
      onUpgrade: (request) => (request.query.has('deny') ? rejectUpgrade(403, 'no') : undefined),
    })
      .withConnectHandler((stream) => stream.subscribe('room'))
      .withMessageHandler((stream, message) => {
        const text = message.text();
        if (text === 'all') stream.broadcast(message);
        else if (text === 'pub') stream.publish('room', message);
        else stream.send(message);
      });
    await app.run();
    cleanups.push(() => app.close());
    const url = await metricsServer(app);

    const before = await scrapeParsed(url);
    assert.equal(valueOf(before, `${P}open_connections`), 0);
    assert.equal(valueOf(before, `${P}connections_opened_total`), 0);
    assert.deepEqual(seriesOf(before, `${P}upgrades_refused_total`), {});

    const a = await openClient(app.url, { perMessageDeflate: false });
    const b = await openClient(app.url, { perMessageDeflate: false });
    a.socket.send('hello');
    assert.equal(await a.nextText(), 'hello');
    a.socket.send('all');
    assert.equal(await a.nextText(), 'all');
    assert.equal(await b.nextText(), 'all');
    b.socket.send('pub'); // to the room but not the sender: a only
    assert.equal(await a.nextText(), 'pub');

    const during = await scrapeParsed(url);
    assert.equal(valueOf(during, `${P}open_connections`), 2);
    assert.equal(valueOf(during, `${P}connections_opened_total`), 2);
    assert.equal(valueOf(during, `${P}messages_received_total`), 3);
    assert.equal(valueOf(during, `${P}messages_sent_total`), 4);

    // Refused by the hook (403) and by the listener itself (a plain request: 426).
    const refused = await rawUpgrade(app.address.port, upgradeRequest('/?deny'));
    assert.equal(refused.status, 403);
    const plain = await rawExchange(app.address.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(plain.status, 426);

    await closeClient(a.socket, 1000);
    await closeClient(b.socket, 4001);
    await waitFor(() => app.metrics().connections === 0, 5000, 'both connections to end');

    const final = await scrapeParsed(url);
    assert.equal(valueOf(final, `${P}open_connections`), 0);
    assert.equal(valueOf(final, `${P}connections_opened_total`), 2);
    assert.deepEqual(seriesOf(final, `${P}upgrades_refused_total`), { 403: 1, 426: 1 });
    assert.equal(valueOf(final, `${P}messages_received_total`), 3);
    assert.equal(valueOf(final, `${P}messages_sent_total`), 4);
    // In: hello, all, pub and two close frames with a code. Out: hello, all twice, pub, two close replies.
    assert.equal(valueOf(final, `${P}received_bytes_total`), clientFrame(5) + clientFrame(3) + clientFrame(3) + 2 * clientFrame(2));
    assert.equal(valueOf(final, `${P}sent_bytes_total`), serverFrame(5) + 2 * serverFrame(3) + serverFrame(3) + 2 * serverFrame(2));
    assert.equal(valueOf(final, `${P}broadcasts_total`), 1);
    assert.equal(valueOf(final, `${P}publishes_total`), 1);
    assert.deepEqual(seriesOf(final, `${P}closes_total`), { 1000: 1, 4001: 1 });
    assert.equal(valueOf(final, `${P}backpressure_dropped_total`), 0);
    assert.equal(valueOf(final, `${P}backpressure_closed_total`), 0);
    assert.equal(valueOf(final, `${P}heartbeat_timeouts_total`), 0);

    // app.metrics() is the same figures as a plain object.
    assert.deepEqual(app.metrics(), {
      connections: 0,
      connectionsTotal: 2,
      upgradesRefused: { 403: 1, 426: 1 },
      messagesReceived: 3,
      messagesSent: 4,
      bytesReceived: 45,
      bytesSent: 30,
      broadcasts: 1,
      publishes: 1,
      backpressureDropped: 0,
      backpressureClosed: 0,
      closeCodes: { 1000: 1, 4001: 1 },
      heartbeatTimeouts: 0,
    });
  });

  it('counts deliveries dropped and connections closed by the backpressure policy', async () => {
    // Each 16 MiB send is more than loopback's socket buffers take at once: the second and
    // third sends of one handler find the receiver over the 1 MiB limit.
    const big = Buffer.alloc(16 * 1024 * 1024, 1);
    for (const policy of ['drop', 'close'] as const) {
      const app = new AsyncWebSocketApp(undefined, { backpressure: policy, maxBufferedAmount: 1024 * 1024 }).withMessageHandler((stream) => {
        for (let i = 0; i < 3; i++) stream.send(big);
      });
      await app.run();
      const client = await openClient(app.url, { perMessageDeflate: false });
      client.socket.send('go');
      await client.next();
      if (policy === 'close') assert.equal(await client.closed, 1008);
      else await closeClient(client.socket, 1000);
      await waitFor(() => app.metrics().connections === 0, 10_000, 'the connection to end');
      const figures = app.metrics();
      assert.equal(figures.messagesSent, 1, policy);
      assert.equal(figures.backpressureDropped, policy === 'drop' ? 2 : 0, policy);
      assert.equal(figures.backpressureClosed, policy === 'close' ? 1 : 0, policy);
      assert.deepEqual(figures.closeCodes, policy === 'drop' ? { 1000: 1 } : { 1008: 1 });
      await app.close();
    }
  });

  it('counts heartbeat timeouts once per connection', async () => {
    const app = new AsyncWebSocketApp().withHeartbeat({ intervalMs: 20, timeoutMs: 40 });
    await app.run();
    cleanups.push(() => app.close());
    // A peer that completes the handshake and then never answers anything, pings included.
    const socket = netConnect(app.address.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(upgradeRequest('/'));
    await once(socket, 'data');
    await once(socket, 'close');
    await waitFor(() => app.metrics().connections === 0, 5000, 'the silent connection to be closed');
    const figures = app.metrics();
    assert.equal(figures.heartbeatTimeouts, 1);
    assert.equal(figures.connectionsTotal, 1);
    // It never answered the close frame either: the connection ended as lost.
    assert.deepEqual(figures.closeCodes, { 1006: 1 });
  });
});

describe('metrics of per-connection handlers', () => {
  it('count on the route, or in a Metrics shared by routes, served at /metrics on our App', async () => {
    const metrics = new Metrics();
    const echo = websocketHandler(
      async (stream) => {
        for await (const message of stream) await stream.send(message);
      },
      { metrics, onUpgrade: (request) => (request.query.has('deny') ? rejectUpgrade(401, 'who are you') : undefined) },
    );
    const hello = websocketHandler((stream) => stream.send('hi').then(() => undefined), { metrics });
    const own = websocketHandler(async (stream) => {
      await stream.recv();
    });
    const app = new App()
      .withWebsocketRoute('/echo', echo)
      .withWebsocketRoute('/hello', hello)
      .withWebsocketRoute('/own', own)
      .withStatelessRoute('/metrics', metricsRoute(metrics));
    await app.run();
    cleanups.push(() => app.close());
    const base = app.url.replace('http', 'ws');

    const client = await openClient(`${base}/echo`, { perMessageDeflate: false });
    client.socket.send('abc');
    assert.equal(await client.nextText(), 'abc');
    // A message in two fragments counts once.
    client.socket.send('ab', { fin: false });
    client.socket.send('cd', { fin: true });
    assert.equal(await client.nextText(), 'abcd');
    const greeted = await openClient(`${base}/hello`, { perMessageDeflate: false });
    assert.equal(await greeted.nextText(), 'hi');
    assert.equal(await greeted.closed, 1000); // the handler returned: the route closes with 1000
    const refused = await rawUpgrade(app.address.port, upgradeRequest('/echo?deny'));
    assert.equal(refused.status, 401);
    await closeClient(client.socket, 1001);
    await waitFor(() => echo.metrics().connections === 0, 5000, 'the echo connection to end');

    const other = await openClient(`${base}/own`, { perMessageDeflate: false });
    other.socket.send('x');
    assert.equal(await other.closed, 1000);
    await waitFor(() => own.metrics().connections === 0, 5000, 'the last connection to end');

    const { status, contentType, body } = await scrape(`${app.url}/metrics`);
    assert.equal(status, 200);
    assert.equal(contentType, METRICS_CONTENT_TYPE);
    const families = parseExposition(body);
    assert.equal(valueOf(families, `${P}connections_opened_total`), 2);
    assert.equal(valueOf(families, `${P}open_connections`), 0);
    assert.deepEqual(seriesOf(families, `${P}upgrades_refused_total`), { 401: 1 });
    assert.equal(valueOf(families, `${P}messages_received_total`), 2);
    assert.equal(valueOf(families, `${P}messages_sent_total`), 3);
    // In: abc, ab + cd, the close frame with 1001; and /hello's client answering its close with 1000.
    assert.equal(valueOf(families, `${P}received_bytes_total`), clientFrame(3) + clientFrame(2) + clientFrame(2) + clientFrame(2) + clientFrame(2));
    // Out: abc, abcd, hi, the close reply to 1001 and /hello's close 1000.
    assert.equal(valueOf(families, `${P}sent_bytes_total`), serverFrame(3) + serverFrame(4) + serverFrame(2) + serverFrame(2) + serverFrame(2));
    assert.deepEqual(seriesOf(families, `${P}closes_total`), { 1000: 1, 1001: 1 });
    assert.equal(valueOf(families, `${P}broadcasts_total`), 0);
    // The route without a `metrics` option counts on its own.
    assert.deepEqual(own.metrics(), { ...new Metrics().snapshot(), connectionsTotal: 1, messagesReceived: 1, bytesReceived: clientFrame(1) + clientFrame(2), bytesSent: serverFrame(2), closeCodes: { 1000: 1 } });
    assert.deepEqual(echo.metrics(), hello.metrics(), 'routes given one Metrics share it');
  });
});

describe('the hook for per-connection heartbeats', () => {
  it('countHeartbeatTimeout counts in the route\'s metrics', async () => {
    // What a per-connection heartbeat calls before it closes a silent stream.
    const route = websocketHandler(async (stream) => {
      (stream as unknown as { countHeartbeatTimeout(): void }).countHeartbeatTimeout();
      await stream.close(1008, 'heartbeat timeout');
    });
    const app = new App().withWebsocketRoute('/', route);
    await app.run();
    cleanups.push(() => app.close());
    const client = await openClient(app.url.replace('http', 'ws'));
    assert.equal(await client.closed, 1008);
    await waitFor(() => route.metrics().connections === 0, 5000, 'the connection to end');
    assert.equal(route.metrics().heartbeatTimeouts, 1);
    assert.deepEqual(route.metrics().closeCodes, { 1008: 1 });
  });
});

describe('the exposition', () => {
  it('has HELP and TYPE for every metric, counters in _total, and answers only GET and HEAD', async () => {
    const text = formatMetrics(new Metrics());
    const families = parseExposition(text);
    assert.equal(families.size, 13);
    for (const family of families.values()) {
      assert.ok(family.help.length > 0);
      assert.equal(family.type === 'counter', family.name.endsWith('_total'));
    }
    assert.equal(families.get(`${P}open_connections`)!.type, 'gauge');
    assert.match(formatMetrics(new Metrics(), 'chat_'), /^# HELP chat_open_connections /);
    assert.throws(() => formatMetrics(new Metrics(), 'bad prefix'), RangeError);

    const url = await metricsServer(new Metrics());
    const head = await scrape(url, 'HEAD');
    assert.deepEqual([head.status, head.contentType, head.body], [200, METRICS_CONTENT_TYPE, '']);
    const post = await scrape(url, 'POST');
    assert.equal(post.status, 405);
  });
});
