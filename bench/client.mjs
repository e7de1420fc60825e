#!/usr/bin/env node
// Client benchmark: humphrey-ws's connect() (and humphrey-ws/ws's client) as the load side
// against the same server, compared with the ws client in the same run.
//
//   node bench/client.mjs [--rounds 3] [--quick] [--server baseline|bun|humphrey-async]
//                         [--clients humphrey,humphrey-ws-compat,ws] [--out FILE]
//
// Scenarios: client-echo (100 connections x 16 messages of 32 bytes in flight, echoes/s) and
// client-connect-rate (10,000 open + close handshakes, 50 at once, handshakes/s). The server
// is pinned to core 0 and the client to core 1; every run starts fresh processes; results are
// medians over rounds, ratios are client/ws. The default server is `baseline` (the node:net
// WebSocket server in servers/trivial.mjs, the least work a Node server can do), so the client
// is what limits; its CPU figure in the table says whether it did.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { findBun } from './bun.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args[i + 1];
};
const quick = args.includes('--quick');
const rounds = Number(flag('--rounds', quick ? 1 : 3));
const serverName = flag('--server', 'baseline');
const clients = flag('--clients', 'humphrey,humphrey-ws-compat,ws').split(',');
const out = flag('--out', join(here, 'results', 'client.json'));
const log = (line) => process.stderr.write(line + '\n');
const haveTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).status === 0;
const pin = (core, argv) => (haveTaskset ? ['taskset', '-c', String(core), ...argv] : argv);

const SCENARIOS = {
  'client-echo': { metric: 'msgs_per_s', label: 'echoes/s', args: ['--mode', 'throughput', '--connections', '100', '--inflight', '16', '--size', '32', '--warmup', quick ? '0.3' : '1', '--duration', quick ? '1' : '5'] },
  'client-connect-rate': { metric: 'handshakes_per_s', label: 'handshakes/s', args: ['--mode', 'connect-rate', '--total', quick ? '1500' : '10000', '--concurrency', '50', '--warmup-conns', quick ? '300' : '1000'] },
};

function serverCommand() {
  if (serverName === 'bun') {
    const bun = findBun(here, { install: true, log });
    if (!('path' in bun)) throw new Error(`--server bun: ${bun.skipped}`);
    return [bun.path, join(here, 'servers', 'bun.mjs'), 'echo-small'];
  }
  const script = serverName === 'baseline' ? 'trivial.mjs' : `${serverName}.mjs`;
  return [process.execPath, join(here, 'servers', script), 'echo-small'];
}

function startServer() {
  return new Promise((resolve, reject) => {
    const argv = pin(0, serverCommand());
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (/^\d+$/.test(line.trim())) resolve({ child, port: Number(line.trim()) });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
}

async function runOnce(scenario, client) {
  const { child, port } = await startServer();
  try {
    const argv = pin(1, [process.execPath, join(here, 'clients', `${client}.mjs`), '--port', String(port), ...SCENARIOS[scenario].args]);
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 180_000, maxBuffer: 1 << 20 });
    if (r.status !== 0) return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-3).join(' ') };
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const report = { meta: { date: new Date().toISOString(), node: process.version, rounds, server: serverName, pinning: haveTaskset ? { server_core: 0, client_core: 1 } : null }, scenarios: {}, runs: [] };
for (const [scenario, def] of Object.entries(SCENARIOS)) {
  const byClient = Object.fromEntries(clients.map((c) => [c, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const client of clients) {
      const res = await runOnce(scenario, client);
      report.runs.push({ scenario, client, round, ...res });
      if (res.error) log(`[${scenario}] round ${round} ${client}: FAILED ${res.error}`);
      else {
        byClient[client].push(res);
        log(`[${scenario}] round ${round}/${rounds} ${client.padEnd(18)} ${def.label}=${res[def.metric]} client CPU ${res.client_cpu_pct}%`);
      }
    }
  }
  const medians = Object.fromEntries(clients.map((c) => [c, { [def.metric]: median(byClient[c].map((r) => r[def.metric])), client_cpu_pct: median(byClient[c].map((r) => r.client_cpu_pct)), runs: byClient[c].length }]));
  const ws = medians.ws?.[def.metric];
  const ratios = Object.fromEntries(clients.filter((c) => c !== 'ws').map((c) => [c, ws ? Math.round((medians[c][def.metric] / ws) * 100) / 100 : null]));
  report.scenarios[scenario] = { metric: def.metric, medians, ratios_to_ws: ratios };
}

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
log('');
log(`client benchmark against server "${serverName}", ${rounds} round(s), medians; ratios are client/ws`);
for (const [scenario, s] of Object.entries(report.scenarios)) {
  for (const c of clients) {
    const m = s.medians[c];
    log(`${scenario.padEnd(20)} ${c.padEnd(18)} ${String(m[s.metric]).padStart(9)} ${SCENARIOS[scenario].label}  client CPU ${m.client_cpu_pct}%  ${c === 'ws' ? '' : `x${s.ratios_to_ws[c]} ws`}`);
  }
}
console.log(JSON.stringify(report));
