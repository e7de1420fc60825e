// permessage-deflate with a real browser: headless Chromium (Debian's, through playwright-core)
// offers the extension as every browser does; our server accepts it with several settings and
// echoes compressible text and binary, including messages over the threshold and fragmented
// sizes the browser chooses itself.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { websocketHandler } from '../../src/stream/handler.js';
import type { PerMessageDeflateOptions } from '../../src/protocol/deflate/negotiate.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-sync'];

let context: BrowserContext;
let userDataDir: string;
const servers: Server[] = [];

before(async () => {
  userDataDir = mkdtempSync(join(tmpdir(), 'humphrey-deflate-'));
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
});

after(async () => {
  await context?.close();
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** An HTTP server with an empty page on / and a compressing echo on every upgrade. */
async function serve(perMessageDeflate: PerMessageDeflateOptions | boolean): Promise<string> {
  const route = websocketHandler(async (stream) => {
    for await (const message of stream) await stream.send(message);
  }, { perMessageDeflate });
  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>deflate</title>'));
  server.on('upgrade', (request, socket, head) => route(request, socket, head, undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface PageResult {
  extensions: string;
  ok: boolean[];
}

/** In the page: open a WebSocket, echo messages of these sizes as text and binary, report. */
async function roundTrips(host: string, sizes: number[]): Promise<PageResult> {
  const page = await context.newPage();
  try {
    await page.goto(`http://${host}/`);
    // Plain JavaScript text: the test's own compiled functions cannot be sent to the page.
    return (await page.evaluate(`(async ({ host, sizes }) => {
      const text = (n, seed) => {
        let out = '[';
        for (let i = 0; out.length < n; i++) out += \`{"id":\${seed * 1000 + i},"name":"user-\${(seed + i) % 29}","on":\${i % 2 === 0}},\`;
        return out.slice(0, n);
      };
      const ws = new WebSocket(\`ws://\${host}/\`);
      ws.binaryType = 'arraybuffer';
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      const queue = [];
      const waiters = [];
      ws.onmessage = (event) => {
        const waiter = waiters.shift();
        if (waiter) waiter(event.data);
        else queue.push(event.data);
      };
      const next = () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve)));
      const ok = [];
      for (const size of sizes) {
        for (const seed of [1, 2]) {
          const message = text(size, seed);
          ws.send(message);
          ok.push((await next()) === message);
          const bytes = new TextEncoder().encode(message);
          ws.send(bytes);
          const echoed = new Uint8Array(await next());
          ok.push(echoed.length === bytes.length && echoed.every((byte, i) => byte === bytes[i]));
        }
      }
      const extensions = ws.extensions;
      ws.close(1000);
      return { extensions, ok };
    })(${JSON.stringify({ host, sizes })})`)) as PageResult;
  } finally {
    await page.close();
  }
}

const SIZES = [0, 5, 1500, 20_000, 300_000];

describe('interop: headless Chromium with permessage-deflate -> our server', () => {
  const cases: [string, PerMessageDeflateOptions | boolean, RegExp][] = [
    ['defaults', true, /^permessage-deflate$/],
    ['threshold 0, no context takeover both ways', { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true }, /server_no_context_takeover; client_no_context_takeover/],
    ['small windows', { threshold: 0, serverMaxWindowBits: 9, clientMaxWindowBits: 10 }, /server_max_window_bits=9; client_max_window_bits=10/],
  ];
  for (const [label, options, agreed] of cases) {
    test(label, async () => {
      const result = await roundTrips(await serve(options), SIZES);
      assert.match(result.extensions, agreed);
      assert.equal(result.ok.length, SIZES.length * 4);
      assert.deepEqual(result.ok.filter((ok) => !ok), []);
    });
  }

  test('a server without compression: the browser runs uncompressed', async () => {
    const result = await roundTrips(await serve(false), [3000]);
    assert.equal(result.extensions, '');
    assert.deepEqual(result.ok, [true, true, true, true]);
  });
});
