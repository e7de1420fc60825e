// docs/scaling.md stays in step with the code: the guide's scaling chapter and the page's own
// relative links resolve, and every health event and counter the brokers have is documented.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGE = join(ROOT, 'docs/scaling.md');

function relativeLinks(file: string): string[] {
  const markdown = readFileSync(file, 'utf8');
  return [...markdown.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((match) => match[1]!).filter((target) => !/^[a-z]+:/.test(target));
}

test('docs/scaling.md exists, the guide links to it, and its relative links resolve', () => {
  const chapter = join(ROOT, 'docs/guide/11-scaling.md');
  const fromGuide = relativeLinks(chapter);
  assert.ok(fromGuide.includes('../scaling.md'));
  for (const target of fromGuide) assert.ok(existsSync(resolve(dirname(chapter), target)), `11-scaling.md: ${target} exists`);
  const links = relativeLinks(PAGE);
  assert.ok(links.length > 0);
  for (const target of links) assert.ok(existsSync(resolve(dirname(PAGE), target)), `scaling.md: ${target} exists`);
});

test('docs/scaling.md names every broker health event and counter', () => {
  const page = readFileSync(PAGE, 'utf8');
  const types = readFileSync(join(ROOT, 'src/broker/types.ts'), 'utf8');
  const union = types.slice(types.indexOf('export type BrokerHealthEvent'), types.indexOf('export type BrokerHealthListener'));
  const events = [...union.matchAll(/type: '([a-z-]+)'/g)].map((match) => match[1]!);
  assert.ok(events.length >= 6, `found ${events.join(', ')}`);
  for (const event of events) assert.ok(page.includes(`| \`'${event}'\` |`), `the events table has '${event}'`);
  const stats = types.slice(types.indexOf('export interface BrokerStats'), types.indexOf('export interface Broker {'));
  const fields = [...stats.matchAll(/readonly ([a-z]+):/g)].map((match) => match[1]!);
  assert.ok(fields.length >= 6, `found ${fields.join(', ')}`);
  for (const field of fields) assert.ok(page.includes(`\`${field}\``), `stats().${field} is documented`);
  // The numbers table has a row for each setup bench/scale.mjs measures.
  for (const setup of ['1 process', '2 cluster workers', '2 processes on one Redis']) assert.ok(page.includes(`| ${setup}`), setup);
  assert.match(page, /at most once/);
});
