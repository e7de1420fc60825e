// The examples the guide quotes beyond its five chapters, each run as a process and driven by
// real clients.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { openClient } from './client.js';
import { startProcess } from './spawn.js';
import { wsUnexpectedResponse, tlsFixture } from '../helpers/server.js';
import { parseExposition, scrape, seriesOf, valueOf } from '../helpers/prometheus.js';

const ROOT = new URL('../..', import.meta.url);

/** Run `node ARGS` to completion; its exit code and stdout. */
async function run(args: string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout };
}

describe('examples/express-chat', () => {
  it('checks the token, keeps rooms apart, reports deliveries, serves Express routes on the same port', async () => {
    const server = await startProcess(['--import', 'tsx', 'examples/express-chat/main.ts', '0']);
    const ws = server.url.replace('http', 'ws');
    try {
      assert.equal((await wsUnexpectedResponse(`${ws}/ws?token=wrong`)).status, 401);
      assert.equal((await wsUnexpectedResponse(`${ws}/ws?token=secret-ada&room=Bad%20Room`)).status, 400);
      const ada = await openClient(`${ws}/ws?token=secret-ada&room=blue`);
      const bob = await openClient(`${ws}/ws?token=secret-bob&room=blue`);
      const eve = await openClient(`${ws}/ws?token=secret-bob&room=green`);
      assert.equal(await ada.nextText(), 'bob joined');
      ada.socket.send('hi');
      assert.equal(await ada.nextText(), 'delivered to 1');
      assert.equal(await bob.nextText(), 'ada: hi');
      eve.socket.send('anyone?');
      assert.equal(await eve.nextText(), 'delivered to 0');
      const health = await (await fetch(`${server.url}/health`)).json();
      assert.deepEqual(health, { connections: 3 });
      bob.socket.close();
      assert.equal(await ada.nextText(), 'bob left');
      ada.socket.close();
      eve.socket.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

describe('examples/fastify', () => {
  it('echoes on /echo next to a Fastify route', async () => {
    const server = await startProcess(['--import', 'tsx', 'examples/fastify/main.ts', '0']);
    try {
      assert.deepEqual(await (await fetch(`${server.url}/`)).json(), { hello: 'from fastify' });
      const client = await openClient(`${server.url.replace('http', 'ws')}/echo`);
      client.socket.send('fast');
      assert.equal(await client.nextText(), 'fast');
      client.socket.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

describe('examples/tls', () => {
  it('serves https and wss with the certificate it was given', async () => {
    const server = await startProcess(['--import', 'tsx', 'examples/tls/main.ts', 'test/fixtures/tls/cert.pem', 'test/fixtures/tls/key.pem', '127.0.0.1:0']);
    try {
      assert.match(server.url, /^https:\/\//);
      const client = await openClient(`${server.url.replace('https', 'wss')}/ws`, { ca: tlsFixture.cert });
      client.socket.send('secret');
      assert.equal(await client.nextText(), 'secret');
      client.socket.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

describe('examples/client and examples/commonjs', () => {
  it('talk to a server, and report a refusal with its status and body', async () => {
    const echo = await startProcess(['bin/humphrey-ws.js', 'echo', '--port', '0']);
    try {
      const client = await run(['--import', 'tsx', 'examples/client/main.ts', echo.url, 'one', 'two']);
      assert.equal(client.code, 0);
      assert.equal(client.stdout, 'reply: one\nreply: two\nclosed 1000\n');
      const cjs = await run(['examples/commonjs/main.cjs', echo.url]);
      assert.equal(cjs.code, 0);
      assert.equal(cjs.stdout, 'hello from CommonJS\n');
    } finally {
      await echo.stop();
    }
    const chat = await startProcess(['--import', 'tsx', 'examples/express-chat/main.ts', '0']);
    try {
      const refused = await run(['--import', 'tsx', 'examples/client/main.ts', `${chat.url.replace('http', 'ws')}/ws?token=nope`]);
      assert.equal(refused.code, 1);
      assert.equal(refused.stdout, 'refused with 401: a valid token is required\n');
    } finally {
      await chat.stop();
    }
  });
});


describe('examples/metrics', () => {
  it('counts both routes in one Metrics, served at /metrics on the app and on a port of its own', async () => {
    const server = await startProcess(['--import', 'tsx', 'examples/metrics/main.ts', '127.0.0.1:0', '0']);
    const ws = server.url.replace('http', 'ws');
    const own = /metrics on (\S+)/.exec(server.output())![1]!;
    try {
      const echo = await openClient(`${ws}/echo`);
      echo.socket.send('ping?');
      assert.equal(await echo.nextText(), 'ping?');
      const a = await openClient(`${ws}/chat`);
      const b = await openClient(`${ws}/chat`);
      a.socket.send('hi all');
      assert.equal(await a.nextText(), 'hi all');
      assert.equal(await b.nextText(), 'hi all');
      echo.socket.close(1000);
      await echo.closed;
      // The figures as JSON (metrics.snapshot()), until the server has seen the echo close.
      const deadline = Date.now() + 5000;
      while (((await (await fetch(`${server.url}/figures`)).json()) as { connections: number }).connections !== 2) {
        assert.ok(Date.now() < deadline, 'the echo connection ends within 5 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      for (const url of [`${server.url}/metrics`, own]) {
        const families = parseExposition((await scrape(url)).body);
        assert.equal(valueOf(families, 'humphrey_ws_open_connections'), 2, url);
        assert.equal(valueOf(families, 'humphrey_ws_connections_opened_total'), 3, url);
        assert.equal(valueOf(families, 'humphrey_ws_messages_received_total'), 2, url);
        assert.equal(valueOf(families, 'humphrey_ws_messages_sent_total'), 3, url);
        assert.equal(valueOf(families, 'humphrey_ws_broadcasts_total'), 1, url);
        assert.deepEqual(seriesOf(families, 'humphrey_ws_closes_total'), { 1000: 1 }, url);
      }
      // As the guide shows it: ping? in (6 + 5 bytes) and out (2 + 5), hi all in (6 + 6) and out
      // twice (2 + 6 each), the close 1000 in (6 + 2) and its reply out (2 + 2).
      assert.deepEqual(await (await fetch(`${server.url}/figures`)).json(), {
        connections: 2,
        connectionsTotal: 3,
        upgradesRefused: {},
        messagesReceived: 2,
        messagesSent: 3,
        bytesReceived: 31,
        bytesSent: 27,
        broadcasts: 1,
        publishes: 0,
        backpressureDropped: 0,
        backpressureClosed: 0,
        closeCodes: { 1000: 1 },
        heartbeatTimeouts: 0,
      });
      a.socket.close();
      b.socket.close();
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
