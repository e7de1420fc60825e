#!/usr/bin/env node
// Scale-out benchmark: broadcast deliveries/s to N subscribers (1,000 by default) with
//   single  one `humphrey-ws broadcast` process
//   cluster `humphrey-ws broadcast --workers 2` (node:cluster, relayed by the primary over IPC)
//   redis   two `humphrey-ws broadcast --redis URL` processes on one redis-server that this
//           script starts on a free loopback port; subscribers alternate between them
// plus the number of Redis PUBLISH commands per broadcast (counted with MONITOR in a separate,
// unmeasured phase, and cross-checked with INFO commandstats). See bench/README.md.
//
//   node bench/scale.mjs [--rounds N] [--quick] [--subscribers N] [--duration S] [--warmup S]
//                        [--configs single,cluster,redis] [--server-cpus LIST] [--gen-cpus LIST]
//                        [--no-pin] [--out FILE]
//
// JSON goes to stdout (and to --out FILE when given); progress goes to stderr.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import os from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const cli = join(root, 'bin', 'humphrey-ws.js');
const loadgenSrc = join(here, 'loadgen', 'wsload.c');
const loadgenBin = join(here, 'loadgen', 'wsload');
const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';
const FD_LIMIT = 20000;
const CONFIGS = ['single', 'cluster', 'redis'];
/** Broadcasts sent in the publish-counting phase. */
const COUNT_BROADCASTS = 500;

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = {
    rounds: 3,
    quick: false,
    subscribers: null,
    duration: null,
    warmup: null,
    configs: CONFIGS,
    serverCpus: '0',
    genCpus: '1',
    pin: true,
    out: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--rounds') o.rounds = Math.max(1, parseInt(val(), 10));
    else if (a === '--quick') o.quick = true;
    else if (a === '--subscribers') o.subscribers = Math.max(2, parseInt(val(), 10));
    else if (a === '--duration') o.duration = parseFloat(val());
    else if (a === '--warmup') o.warmup = parseFloat(val());
    else if (a === '--configs') o.configs = val().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--server-cpus') o.serverCpus = val();
    else if (a === '--gen-cpus') o.genCpus = val();
    else if (a === '--no-pin') o.pin = false;
    else if (a === '--out') o.out = resolve(val());
    else if (a === '--help' || a === '-h') {
      process.stderr.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 14).join('\n') + '\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  for (const c of o.configs) if (!CONFIGS.includes(c)) throw new Error(`unknown config ${c} (${CONFIGS.join(', ')})`);
  if (o.quick) o.rounds = Math.min(o.rounds, 1);
  o.subscribers ??= o.quick ? 100 : 1000;
  o.duration ??= o.quick ? 1 : 5;
  o.warmup ??= o.quick ? 0.25 : 1;
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------- tools
function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
const haveTaskset = !!which('taskset');
const havePrlimit = !!which('prlimit');
const pinning = opts.pin && haveTaskset && os.cpus().length >= 2;
const CLK_TCK = parseInt(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout, 10) || 100;

/** Pin to `cpus` (taskset; children inherit it) and raise the open-file limit. */
function wrap(cpus, argv) {
  let out = argv;
  if (havePrlimit) out = ['prlimit', `--nofile=${FD_LIMIT}:${FD_LIMIT}`, ...out];
  if (pinning) out = ['taskset', '-c', cpus, ...out];
  return out;
}

function buildLoadgen() {
  const stale = !existsSync(loadgenBin) || statSync(loadgenBin).mtimeMs < statSync(loadgenSrc).mtimeMs;
  if (!stale) return;
  log(`building ${loadgenBin}`);
  // Built aside and renamed into place, so that a generator already running is never overwritten.
  const tmp = `${loadgenBin}.${process.pid}`;
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', tmp, loadgenSrc], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('gcc failed to build bench/loadgen/wsload');
  renameSync(tmp, loadgenBin);
}

/** utime + stime of one process, in seconds (null once it is gone). */
function procCpuSeconds(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** `pid` and all its descendants (cluster workers are children of the primary). */
function processTree(pid) {
  const parents = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = readFileSync(`/proc/${name}/stat`, 'utf8');
      parents.set(Number(name), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {}
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** CPU seconds used so far by the server side (each process and its descendants). */
function serverCpu(pids) {
  const per = new Map();
  for (const root of pids) for (const pid of processTree(root)) per.set(pid, procCpuSeconds(pid) ?? 0);
  return per;
}

function cpuDelta(a, b) {
  let total = 0;
  for (const [pid, end] of b) total += end - (a.get(pid) ?? 0);
  return total;
}

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

function redisCli(port, ...args) {
  const r = spawnSync(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** Calls of PUBLISH so far, from INFO commandstats. */
function publishCalls(port) {
  const m = /cmdstat_publish:calls=(\d+)/.exec(redisCli(port, 'INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

// ---------------------------------------------------------------- processes
async function stop(proc, signal = 'SIGTERM') {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function startRedis() {
  if (!existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing (apt-get install redis-server)`);
  const port = await freePort();
  const argv = wrap(opts.serverCpus, [REDIS_SERVER, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  const proc = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] }));
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      if (redisCli(port, 'PING').trim() === 'PONG') return { proc, port };
    } catch {}
    if (proc.exitCode !== null) throw new Error('redis-server exited at start');
    if (Date.now() > deadline) {
      await stop(proc, 'SIGKILL');
      throw new Error('redis-server did not answer within 10 s');
    }
    await sleep(20);
  }
}

/** `humphrey-ws broadcast` with `flags`; resolves once it prints "listening on ws://HOST:PORT". */
function startBroadcastServer(flags) {
  const argv = wrap(opts.serverCpus, [process.execPath, cli, 'broadcast', '--host', '127.0.0.1', '--port', '0', ...flags]);
  const proc = track(spawn(argv[0], argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  proc.stderr.on('data', (d) => {
    if (stderr.length < 8000) stderr += d;
  });
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not listen within 30 s: ${stderr.trim().slice(0, 500)}`));
    }, 30000);
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /listening on ws:\/\/[^:]+:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolvePromise({ proc, port: Number(m[1]), stderr: () => stderr });
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening: ${stderr.trim().slice(0, 500)}`));
    });
  });
}

/** Start the servers of one configuration: { servers: [{proc, port}], redis?: {proc, port} }. */
async function startConfig(config) {
  if (config === 'single') return { servers: [await startBroadcastServer([])] };
  if (config === 'cluster') return { servers: [await startBroadcastServer(['--workers', '2'])] };
  const redis = await startRedis();
  try {
    const url = `redis://127.0.0.1:${redis.port}`;
    const servers = await Promise.all([startBroadcastServer(['--redis', url]), startBroadcastServer(['--redis', url])]);
    return { servers, redis };
  } catch (error) {
    await stop(redis.proc, 'SIGKILL');
    throw error;
  }
}

async function stopConfig(setup) {
  await Promise.all(setup.servers.map((s) => stop(s.proc)));
  if (setup.redis) await stop(setup.redis.proc, 'SIGKILL');
}

// ---------------------------------------------------------------- the generator
/** Run wsload's broadcast scenario; `onEvent` sees its progress lines. Resolves its result line. */
function runLoadgen(ports, onEvent) {
  const args = [
    loadgenBin, '--scenario', 'broadcast', '--ports', ports.join(','), '--label', 'scale',
    '--connections', String(opts.subscribers), '--size', '64', '--window', '16',
    '--duration', String(opts.duration), '--warmup', String(opts.warmup),
  ];
  const argv = wrap(opts.genCpus, args);
  const proc = track(spawn(argv[0], argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stderr = '';
  proc.stderr.on('data', (d) => {
    if (stderr.length < 4000) stderr += d;
  });
  let result = null;
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let obj;
    try {
      obj = JSON.parse(line);
    } catch {
      return;
    }
    if (obj.event) onEvent(obj);
    else result = obj;
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 120000 + 1000 * (opts.duration + opts.warmup));
  return new Promise((r) =>
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      r(result ?? { error: `wsload exited (${code ?? signal}) without a result: ${stderr.trim().slice(0, 500)}` });
    }),
  );
}

// ---------------------------------------------------------------- counting Redis publishes
/**
 * With two servers on Redis and nothing else going on: a client on the first sends
 * COUNT_BROADCASTS broadcasts, a client on the second waits for them all. MONITOR shows every
 * PUBLISH; a broadcast is kind 1 in the broker's envelope, a connection-count announcement
 * kind 3 (those are counted apart). INFO commandstats gives the total as a cross-check.
 */
async function countRedisPublishes(setup) {
  const { default: WebSocket } = await import('ws');
  const [a, b] = setup.servers;
  const open = (port) =>
    new Promise((resolvePromise, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`);
      ws.once('open', () => resolvePromise(ws));
      ws.once('error', reject);
    });
  const publisher = await open(a.port);
  const listener = await open(b.port);
  let received = 0;
  listener.on('message', () => received++);
  // Let the connection-count announcements of these two connections go out first.
  await sleep(300);
  const monitor = track(spawn(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(setup.redis.port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const counts = { broadcast: 0, presence: 0, other: 0 };
  let monitorReady = false;
  createInterface({ input: monitor.stdout }).on('line', (line) => {
    if (line.trim() === 'OK') monitorReady = true;
    const m = /"PUBLISH" "([^"]*)" "(\\x0[0-9a-f]|.)/i.exec(line);
    if (!m) return;
    if (m[2] === '\\x01') counts.broadcast++;
    else if (m[2] === '\\x03') counts.presence++;
    else counts.other++;
  });
  try {
    const deadline = Date.now() + 5000;
    while (!monitorReady && Date.now() < deadline) await sleep(10);
    const before = publishCalls(setup.redis.port);
    for (let i = 0; i < COUNT_BROADCASTS; i++) publisher.send(Buffer.alloc(64, i & 0xff));
    const until = Date.now() + 20000;
    while (received < COUNT_BROADCASTS && Date.now() < until) await sleep(10);
    const after = publishCalls(setup.redis.port);
    // MONITOR lags behind: wait for every broadcast to show, then a little more for any extra.
    const seen = Date.now() + 5000;
    while (counts.broadcast < COUNT_BROADCASTS && Date.now() < seen) await sleep(10);
    await sleep(200);
    return {
      broadcasts: COUNT_BROADCASTS,
      received_on_other_process: received,
      monitor_publish_broadcast: counts.broadcast,
      monitor_publish_presence: counts.presence,
      monitor_publish_other: counts.other,
      commandstats_publish_calls: after - before,
      redis_publishes_per_broadcast: round(counts.broadcast / COUNT_BROADCASTS, 3),
    };
  } finally {
    monitor.kill('SIGKILL');
    publisher.terminate();
    listener.terminate();
  }
}

// ---------------------------------------------------------------- one run
async function runOnce(config) {
  const setup = await startConfig(config);
  try {
    const ports = setup.servers.map((s) => s.port);
    const roots = [...setup.servers.map((s) => s.proc.pid), ...(setup.redis ? [setup.redis.proc.pid] : [])];
    let cpuStart = null;
    let cpuEnd = null;
    let publishesStart = null;
    let publishesEnd = null;
    const result = await runLoadgen(ports, (event) => {
      if (event.event === 'measure-start') {
        cpuStart = serverCpu(roots);
        if (setup.redis) publishesStart = publishCalls(setup.redis.port);
      } else if (event.event === 'measure-end') {
        cpuEnd = serverCpu(roots);
        if (setup.redis) publishesEnd = publishCalls(setup.redis.port);
      }
    });
    const serverCpuS = cpuStart && cpuEnd ? cpuDelta(cpuStart, cpuEnd) : null;
    const run = {
      config,
      status: result.status ?? 'error',
      error: result.error,
      deliveries_per_s: result.deliveries_per_s ?? null,
      deliveries: result.deliveries ?? null,
      window_s: result.window_s ?? null,
      published: result.published ?? null,
      lost: result.lost ?? null,
      reordered: result.reordered ?? null,
      server_processes: cpuEnd ? cpuEnd.size : null,
      server_cpu_pct: serverCpuS !== null && result.window_s ? round((100 * serverCpuS) / result.window_s) : null,
      deliveries_per_server_cpu_s: serverCpuS ? round(result.deliveries / serverCpuS, 0) : null,
      gen_cpu_pct: result.gen_cpu_pct ?? null,
    };
    if (setup.redis && publishesStart !== null && publishesEnd !== null) run.redis_publish_calls_in_window = publishesEnd - publishesStart;
    if (setup.redis && run.status === 'ok') run.publish_count = await countRedisPublishes(setup);
    return run;
  } finally {
    await stopConfig(setup);
  }
}

function median(xs) {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// ---------------------------------------------------------------- main
async function main() {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run npm run build first');
  buildLoadgen();
  const runs = [];
  for (let r = 1; r <= opts.rounds; r++) {
    for (const config of opts.configs) {
      log(`round ${r}/${opts.rounds}: ${config}`);
      let run;
      try {
        run = await runOnce(config);
      } catch (error) {
        run = { config, status: 'error', error: String(error?.message ?? error) };
      }
      run.round = r;
      runs.push(run);
      log(`  ${run.status} ${run.deliveries_per_s ?? '-'} deliveries/s${run.error ? ` (${run.error})` : ''}`);
    }
  }
  const summary = {};
  for (const config of opts.configs) {
    const ok = runs.filter((run) => run.config === config && run.status === 'ok' && run.lost === 0 && run.reordered === 0);
    summary[config] = {
      runs_ok: ok.length,
      deliveries_per_s: round(median(ok.map((run) => run.deliveries_per_s))),
      server_cpu_pct: round(median(ok.map((run) => run.server_cpu_pct))),
      deliveries_per_server_cpu_s: round(median(ok.map((run) => run.deliveries_per_server_cpu_s)), 0),
    };
    if (config === 'redis') {
      summary[config].redis_publishes_per_broadcast = median(ok.map((run) => run.publish_count?.redis_publishes_per_broadcast));
    }
  }
  const report = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model,
      redis: existsSync(REDIS_SERVER) ? spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' }).stdout.trim() : null,
      subscribers: opts.subscribers,
      message_bytes: 64,
      window: 16,
      duration_s: opts.duration,
      warmup_s: opts.warmup,
      rounds: opts.rounds,
      pinning: pinning ? { server_cpus: opts.serverCpus, generator_cpus: opts.genCpus } : null,
      quick: opts.quick,
    },
    summary,
    runs,
  };
  const json = JSON.stringify(report, null, 2);
  process.stdout.write(json + '\n');
  if (opts.out) writeFileSync(opts.out, json + '\n');
  const failed = opts.configs.filter((config) => summary[config].runs_ok === 0);
  if (failed.length > 0) {
    log(`no good run for: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  log(`scale: ${error?.stack ?? error}`);
  killAll();
  process.exit(1);
});
