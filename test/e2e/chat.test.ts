// The chat demo in a real browser: headless Chromium (Debian's) driven by playwright-core,
// against `humphrey-ws demo` started as a process, as `npm start` does.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startProcess, type RunningProcess } from '../examples/spawn.js';
import { BIN, ROOT } from '../cli/run.js';
import { parseExposition, scrape, valueOf } from '../helpers/prometheus.js';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
  '--no-first-run', '--disable-component-update', '--disable-sync',
];

let server: RunningProcess;
let url: string;
let context: BrowserContext;
let userDataDir: string;

before(async () => {
  server = await startProcess([BIN, 'demo', '--port', '0']);
  url = server.url;
  userDataDir = mkdtempSync(join(tmpdir(), 'humphrey-chat-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1100, height: 700 },
  });
});

after(async () => {
  await context?.close();
  await server?.stop();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

async function joinAs(name: string, room: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (error) => assert.fail(`${name}'s page threw: ${error.message}`));
  await page.goto(url);
  await page.fill('#name', name);
  await page.fill('#room', room);
  await page.click('#join-form button[type=submit]');
  await page.locator('#status[data-state="open"]').waitFor();
  return page;
}

/** Waits until the page lists exactly these people as online. */
async function online(page: Page, names: string[]): Promise<void> {
  const expected = [...names].sort().join('\n');
  await page.waitForFunction(
    (want) => [...document.querySelectorAll('#members .who')].map((node) => node.textContent).sort().join('\n') === want,
    expected,
  );
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#say', text);
  await page.press('#say', 'Enter');
}

/** Waits for a chat message with exactly this text on the page. */
async function sees(page: Page, text: string): Promise<void> {
  await page.waitForFunction(
    (want) => [...document.querySelectorAll('#messages .message .text')].some((node) => node.textContent === want),
    text,
  );
}

async function messageTexts(page: Page): Promise<string[]> {
  return page.locator('#messages .message .text').allTextContents();
}

describe('the chat demo in Chromium', () => {
  let alice: Page;
  let bob: Page;
  let carol: Page;

  it('two pages chat in one room; a page in another room sees none of it', async () => {
    alice = await joinAs('Alice', 'blue');
    bob = await joinAs('Bob', 'blue');
    carol = await joinAs('Carol', 'green');
    await online(alice, ['Alice', 'Bob']);
    await online(bob, ['Alice', 'Bob']);
    await online(carol, ['Carol']);
    await alice.locator('#messages .notice', { hasText: 'Bob joined' }).waitFor();

    await say(alice, 'Hi Bob, this is the blue room.');
    await sees(bob, 'Hi Bob, this is the blue room.');
    await say(bob, 'Hello Alice — ça va ?');
    await sees(alice, 'Hello Alice — ça va ?');
    // Text from other people is text: markup arrives as characters, never as elements.
    const markup = '<img src=x onerror="document.title=1"><b>not bold</b>';
    await say(bob, markup);
    await sees(alice, markup);
    assert.equal(await alice.locator('#messages b, #messages img').count(), 0);

    // Carol's own message comes back to her after everything the server published before it,
    // so had the blue room's messages reached her, they would be on her page by now.
    await say(carol, 'Anyone in green?');
    await sees(carol, 'Anyone in green?');
    assert.deepEqual(await messageTexts(carol), ['Anyone in green?']);
    assert.equal(await carol.locator('#messages', { hasText: 'Alice' }).count(), 0);
    assert.ok(!(await messageTexts(alice)).includes('Anyone in green?'));
    // The live figures arrive from the server's metrics every 2 s.
    await alice.waitForFunction(() => document.getElementById('figure-connections')!.textContent === '3');
  });

  it('the live figures come from the metrics: they show, and they change with the traffic', async () => {
    // The same figures as the server's /metrics.
    const scraped = parseExposition((await scrape(`${url}/metrics`)).body);
    assert.equal(valueOf(scraped, 'humphrey_ws_open_connections'), 3);
    assert.ok(valueOf(scraped, 'humphrey_ws_messages_received_total') >= 4);

    await alice.waitForFunction(() => document.getElementById('figure-total')!.textContent !== '–');
    const before = Number(await alice.textContent('#figure-total'));
    assert.ok(before >= 4, `${before} messages shown`);
    for (const text of ['one', 'two', 'three']) {
      await say(bob, text);
      await sees(alice, text);
    }
    await alice.waitForFunction((shown) => Number(document.getElementById('figure-total')!.textContent) >= shown + 3, before);
    assert.match((await alice.textContent('#figure-rate'))!, /^\d+(\.\d)?$/);
    assert.match((await alice.textContent('#figure-sent'))!, /^\d+(\.\d)?$/);
    assert.match((await alice.textContent('#figure-traffic'))!, /^\d+(\.\d)? (B|kB|MB)\/s$/);
    assert.equal(await alice.textContent('#figure-connections'), '3');
  });

  it('the pages survive a server restart: they reconnect by themselves and chat again', async () => {
    const port = new URL(url).port;
    assert.equal(await server.stop(), 0);
    await alice.locator('#status[data-state="closed"]').waitFor();
    await bob.locator('#status[data-state="closed"]').waitFor();
    server = await startProcess([BIN, 'demo', '--port', port]);
    for (const page of [alice, bob, carol]) await page.locator('#status[data-state="open"]').waitFor({ timeout: 20_000 });
    await online(alice, ['Alice', 'Bob']);
    await online(carol, ['Carol']);
    await say(bob, 'Still here after the restart.');
    await sees(alice, 'Still here after the restart.');
    assert.equal(await alice.locator('#messages .notice', { hasText: 'reconnected to #blue' }).count(), 1);
    // Coming back after a restart is not announced as joining again.
    assert.equal(await alice.locator('#messages .notice', { hasText: 'Bob joined' }).count(), 1);
  });

  it('a page that leaves is announced and drops off the list; screenshots are saved', async () => {
    await say(alice, 'See you!');
    await sees(bob, 'See you!');
    await alice.waitForFunction(() => document.getElementById('figure-connections')!.textContent === '3');
    mkdirSync(ARTIFACTS, { recursive: true });
    await alice.screenshot({ path: join(ARTIFACTS, 'chat.png') });
    await bob.setViewportSize({ width: 390, height: 760 });
    await bob.screenshot({ path: join(ARTIFACTS, 'chat-phone.png') });

    await carol.close();
    await bob.click('#leave');
    await alice.locator('#messages .notice', { hasText: 'Bob left' }).waitFor();
    await online(alice, ['Alice']);
    await bob.locator('#join-view').waitFor();
  });
});
