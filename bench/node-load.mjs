// What bench/client.mjs and bench/tls.mjs share: Node load sides (bench/clients/*.mjs) driven
// against a server script (bench/servers/*.mjs), each pinned to its own core, fresh processes
// per run, medians over rounds.
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { findBun } from './bun.mjs';

export const benchDir = dirname(fileURLToPath(import.meta.url));
const haveTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).status === 0;
export const pinning = haveTaskset ? { server_core: 0, client_core: 1 } : null;
const pin = (core, argv) => (haveTaskset ? ['taskset', '-c', String(core), ...argv] : argv);
export const log = (line) => process.stderr.write(line + '\n');

/** The command that runs server target `name` (`baseline` is servers/trivial.mjs). */
export function serverCommand(name, scenario = 'echo-small') {
  if (name === 'bun') {
    const bun = findBun(benchDir, { install: true, log });
    if (!('path' in bun)) throw new Error(`server bun: ${bun.skipped}`);
    return [bun.path, join(benchDir, 'servers', 'bun.mjs'), scenario];
  }
  const script = name === 'baseline' ? 'trivial.mjs' : name === 'ws' ? 'ws-8.mjs' : `${name}.mjs`;
  return [process.execPath, join(benchDir, 'servers', script), scenario];
}

/** Start a server on core 0; resolves with its port once it prints it. */
export function startServer(argv, env = {}) {
  return new Promise((resolve, reject) => {
    const pinned = pin(0, argv);
    const child = spawn(pinned[0], pinned.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (/^\d+$/.test(line.trim())) resolve({ child, port: Number(line.trim()) });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
}

export async function stopServer(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(killer);
}

/** Run load side `client` (bench/clients/NAME.mjs) on core 1 against `port`; its JSON result or `{ error }`. */
export function runClient(client, port, args) {
  const argv = pin(1, [process.execPath, join(benchDir, 'clients', `${client}.mjs`), '--port', String(port), ...args]);
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 180_000, maxBuffer: 1 << 20 });
  if (r.status !== 0) return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ') };
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

export function median(xs) {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function argsOf(argv) {
  return {
    flag: (name, fallback) => {
      const i = argv.indexOf(name);
      return i < 0 ? fallback : argv[i + 1];
    },
    has: (name) => argv.includes(name),
  };
}

/**
 * Run every scenario: for each round, every item (a client or a server target) in turn, so drift
 * hits all alike. `runOne(scenario, item)` returns a result or `{ error }`. Returns the report's
 * `scenarios` (medians and ratios to `reference`) and `runs`.
 */
export async function rounds({ scenarios, items, reference, count, runOne, label }) {
  const out = { scenarios: {}, runs: [] };
  for (const [scenario, def] of Object.entries(scenarios)) {
    const by = Object.fromEntries(items.map((i) => [i, []]));
    for (let round = 1; round <= count; round++) {
      for (const item of items) {
        const res = await runOne(scenario, item);
        out.runs.push({ scenario, [label]: item, round, ...res });
        if (res.error) log(`[${scenario}] round ${round} ${item}: FAILED ${res.error}`);
        else {
          by[item].push(res);
          log(`[${scenario}] round ${round}/${count} ${item.padEnd(18)} ${def.label}=${res[def.metric]} client CPU ${res.client_cpu_pct}%`);
        }
      }
    }
    const medians = Object.fromEntries(items.map((i) => [i, { [def.metric]: median(by[i].map((r) => r[def.metric])), client_cpu_pct: median(by[i].map((r) => r.client_cpu_pct)), runs: by[i].length }]));
    const ref = medians[reference]?.[def.metric];
    const ratios = Object.fromEntries(items.filter((i) => i !== reference).map((i) => [i, ref && medians[i][def.metric] !== null ? Math.round((medians[i][def.metric] / ref) * 100) / 100 : null]));
    out.scenarios[scenario] = { metric: def.metric, label: def.label, medians, [`ratios_to_${reference}`]: ratios };
  }
  return out;
}

export function printTable(report, items, reference) {
  for (const [scenario, s] of Object.entries(report.scenarios)) {
    for (const i of items) {
      const m = s.medians[i];
      const ratio = i === reference ? '' : `x${s[`ratios_to_${reference}`][i]} ${reference}`;
      log(`${scenario.padEnd(20)} ${i.padEnd(18)} ${String(m[s.metric]).padStart(9)} ${s.label}  client CPU ${m.client_cpu_pct}%  ${ratio}`);
    }
  }
}
