#!/usr/bin/env node
// TLS benchmark: echo-small and connect-rate over wss:// for each server target on Node's TLS,
// with the same load side for all (humphrey-ws's connect(), the fastest Node client here; the
// C generator speaks no TLS). `baseline` is the node:net server of servers/trivial.mjs over
// node:tls, so it shows how far TLS alone takes Node.
//
//   node bench/tls.mjs [--rounds 3] [--quick] [--targets baseline,ws,humphrey-sync,humphrey-async]
//                      [--client humphrey] [--out FILE]
//
// Server on core 0, client on core 1, fresh processes per run, medians; ratios are target/ws.
// The certificate is the test fixture (test/fixtures/tls); the client does not verify it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { argsOf, benchDir, log, pinning, printTable, rounds, runClient, serverCommand, startServer, stopServer } from './node-load.mjs';

const { flag, has } = argsOf(process.argv.slice(2));
const quick = has('--quick');
const count = Number(flag('--rounds', quick ? 1 : 3));
const targets = flag('--targets', 'baseline,ws,humphrey-sync,humphrey-async').split(',');
const client = flag('--client', 'humphrey');
const out = flag('--out', join(benchDir, 'results', 'tls.json'));
const fixtures = join(benchDir, '..', 'test', 'fixtures', 'tls');
const env = { BENCH_TLS_CERT: join(fixtures, 'cert.pem'), BENCH_TLS_KEY: join(fixtures, 'key.pem') };

const SCENARIOS = {
  'tls-echo-small': { metric: 'msgs_per_s', label: 'echoes/s', args: ['--tls', '1', '--mode', 'throughput', '--connections', '100', '--inflight', '16', '--size', '32', '--warmup', quick ? '0.3' : '1', '--duration', quick ? '1' : '5'] },
  'tls-connect-rate': { metric: 'handshakes_per_s', label: 'handshakes/s', args: ['--tls', '1', '--mode', 'connect-rate', '--total', quick ? '600' : '4000', '--concurrency', '50', '--warmup-conns', quick ? '100' : '500'] },
};

const result = await rounds({
  scenarios: SCENARIOS,
  items: targets,
  reference: 'ws',
  count,
  label: 'target',
  async runOne(scenario, target) {
    const { child, port } = await startServer(serverCommand(target), env);
    try {
      return runClient(client, port, SCENARIOS[scenario].args);
    } finally {
      await stopServer(child);
    }
  },
});
const report = { meta: { date: new Date().toISOString(), node: process.version, rounds: count, client, pinning }, ...result };
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
log('');
log(`wss:// benchmark, load side "${client}", ${count} round(s), medians; ratios are target/ws`);
printTable(report, targets, 'ws');
console.log(JSON.stringify(report));
