// Finds a `bun` binary for the `bun` target: on PATH, else the one npm's
// `@oven/bun-linux-x64` package ships, installed on first use into bench/.tools (outside the
// project's dependencies, so `npm ci` never downloads it). `--no-bun-install` or
// HUMPHREY_BENCH_NO_BUN_INSTALL=1 turns the install off; the target is then skipped.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The npm package with Bun's Linux x64 binary, and the major version compared against. */
const BUN_PACKAGE = '@oven/bun-linux-x64@1';

function onPath(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/**
 * @param {string} benchDir the bench/ directory
 * @param {{ install: boolean, log: (line: string) => void }} options
 * @returns {{ path: string, version: string } | { skipped: string }}
 */
export function findBun(benchDir, { install, log }) {
  const toolsDir = join(benchDir, '.tools');
  const shipped = join(toolsDir, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');
  let path = onPath('bun') ?? (existsSync(shipped) ? shipped : null);
  if (path === null) {
    if (process.platform !== 'linux' || process.arch !== 'x64') return { skipped: `no bun binary on PATH (npm ships one for linux-x64 only, this is ${process.platform}-${process.arch})` };
    if (!install) return { skipped: 'no bun binary on PATH and its install was turned off' };
    log(`bun: not on PATH; installing ${BUN_PACKAGE} into ${toolsDir} (once)`);
    const r = spawnSync('npm', ['install', '--prefix', toolsDir, '--no-save', '--no-audit', '--no-fund', '--ignore-scripts', BUN_PACKAGE], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0 || !existsSync(shipped)) return { skipped: `no bun binary on PATH and npm could not install ${BUN_PACKAGE}: ${(r.stderr || '').trim().split('\n').pop()}` };
    path = shipped;
  }
  const v = spawnSync(path, ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return { skipped: `${path} does not run: ${(v.stderr || '').trim()}` };
  return { path, version: v.stdout.trim() };
}
