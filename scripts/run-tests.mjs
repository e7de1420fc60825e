// Finds every *.test.ts under test/ and runs them with node's test runner (tsx loads TypeScript).
// Node 20's --test does not expand globs itself, so the list is built here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

// `--tap` (or HUMPHREY_TEST_REPORTER=tap) prints node's TAP; otherwise a short report that
// ends with "N passed, M failed" (scripts/test-report.mjs).
const args = process.argv.slice(2);
const tap = args.includes('--tap') || process.env.HUMPHREY_TEST_REPORTER === 'tap';
const filter = args.filter((arg) => arg !== '--tap');
let files = collect('test', []);
if (filter.length) files = files.filter((f) => filter.some((part) => f.includes(part)));
const reporter = tap ? ['--test-reporter=tap'] : ['--test-reporter', new URL('./test-report.mjs', import.meta.url).href];
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...reporter, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
