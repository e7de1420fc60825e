// The package as a user installs it: every subpath export loads with `import` and with
// `require` (Node >= 20.19 loads ES modules from require), and the core has no runtime
// dependencies. Runs against the built dist/ (npm test builds first).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve('.');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  dependencies?: Record<string, string>;
  exports: Record<string, unknown>;
};

/** Run `code` with node from a folder where `humphrey-ws` resolves to this checkout, as installed. */
function runAsUser(args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'humphrey-ws-user-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', manifest.name), 'dir');
    return execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const subpaths = Object.keys(manifest.exports).filter((key) => key !== './package.json');

test('const { App } = require("humphrey-ws") works, and so does every subpath export', () => {
  const out = runAsUser(['-e', 'const { App, connect, AsyncWebSocketApp } = require("humphrey-ws"); console.log(typeof App, typeof connect, typeof AsyncWebSocketApp)']);
  assert.equal(out.trim(), 'function function function');
  for (const subpath of subpaths) {
    const specifier = manifest.name + subpath.slice(1);
    const keys = runAsUser(['-e', `console.log(Object.keys(require(${JSON.stringify(specifier)})).length)`]);
    assert.ok(Number(keys) > 0, `${specifier} exports something through require`);
  }
});

test('every subpath export loads with import', () => {
  for (const subpath of subpaths) {
    const specifier = manifest.name + subpath.slice(1);
    const keys = runAsUser(['--input-type=module', '-e', `const m = await import(${JSON.stringify(specifier)}); console.log(Object.keys(m).length)`]);
    assert.ok(Number(keys) > 0, `${specifier} exports something through import`);
  }
});

test('the core package has no runtime dependencies', () => {
  assert.deepEqual(manifest.dependencies ?? {}, {});
});
