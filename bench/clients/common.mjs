// Shared driver of the client benchmark (bench/client.mjs): one client library on the load side.
// A client module gives `open(url)` -> a connection with `send(buffer)`, `onMessage(fn)`,
// `close()` resolving when the close handshake ended; this file runs the two modes over it and
// prints one JSON line.
//
//   throughput:    C connections, each keeping `inflight` messages of `size` bytes outstanding;
//                  every echo received sends the next; echoes received inside the window count.
//   connect-rate:  N connections opened and closed (close handshake) with `concurrency` at once;
//                  handshakes completed per second after a warm-up of `warmup` connections.

function parse(argv) {
  const o = { mode: 'throughput', port: 0, host: '127.0.0.1', tls: false, connections: 100, inflight: 16, size: 32, warmup: 1, duration: 5, total: 10000, concurrency: 50, warmupConns: 1000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    const value = argv[i + 1];
    o[key] = typeof o[key] === 'number' ? Number(value) : typeof o[key] === 'boolean' ? value === '1' || value === 'true' : value;
  }
  return o;
}

export async function run(client) {
  const o = parse(process.argv.slice(2));
  const url = `${o.tls ? 'wss' : 'ws'}://${o.host}:${o.port}/`;
  const result = o.mode === 'connect-rate' ? await connectRate(client, url, o) : await throughput(client, url, o);
  const usage = process.resourceUsage();
  console.log(JSON.stringify({ client: client.name, mode: o.mode, tls: o.tls, ...result, client_rss_mib: Math.round(process.memoryUsage().rss / 1048576) , client_cpu_s: (usage.userCPUTime + usage.systemCPUTime) / 1e6 }));
  process.exit(0);
}

async function throughput(client, url, o) {
  const payload = Buffer.alloc(o.size, 0x61);
  const conns = [];
  for (let i = 0; i < o.connections; i++) conns.push(await client.open(url, o));
  let counting = false;
  let received = 0;
  let all = 0;
  for (const c of conns) {
    c.onMessage(() => {
      all++;
      if (counting) received++;
      c.send(payload);
    });
  }
  for (const c of conns) for (let k = 0; k < o.inflight; k++) c.send(payload);
  await sleep(o.warmup * 1000);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  counting = true;
  await sleep(o.duration * 1000);
  counting = false;
  const window = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  for (const c of conns) c.terminate();
  if (all === 0) throw new Error('no echo arrived');
  return { connections: o.connections, inflight: o.inflight, size: o.size, window_s: round(window), msgs_per_s: Math.round(received / window), client_cpu_pct: round((100 * (cpu.user + cpu.system)) / 1e6 / window) };
}

async function connectRate(client, url, o) {
  let started = 0;
  let done = 0;
  let failures = 0;
  let t0 = 0n;
  let cpu0 = null;
  await new Promise((resolve) => {
    const next = () => {
      if (started >= o.total) {
        if (done === o.total) resolve();
        return;
      }
      started++;
      client
        .open(url, o)
        .then((c) => c.close())
        .catch(() => failures++)
        .finally(() => {
          done++;
          if (done === o.warmupConns) {
            t0 = process.hrtime.bigint();
            cpu0 = process.cpuUsage();
          }
          next();
        });
    };
    for (let i = 0; i < o.concurrency; i++) next();
  });
  const window = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const measured = o.total - o.warmupConns;
  return { total: o.total, concurrency: o.concurrency, failures, window_s: round(window), handshakes_per_s: Math.round(measured / window), client_cpu_pct: round((100 * (cpu.user + cpu.system)) / 1e6 / window) };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (x) => Math.round(x * 100) / 100;
