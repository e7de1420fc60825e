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
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { argsOf, benchDir, log, pinning, printTable, rounds, runClient, serverCommand, startServer, stopServer } from './node-load.mjs';

const { flag, has } = argsOf(process.argv.slice(2));
const quick = has('--quick');
const count = Number(flag('--rounds', quick ? 1 : 3));
const server = flag('--server', 'baseline');
const clients = flag('--clients', 'humphrey,humphrey-ws-compat,ws').split(',');
const out = flag('--out', join(benchDir, 'results', 'client.json'));

const SCENARIOS = {
  'client-echo': { metric: 'msgs_per_s', label: 'echoes/s', args: ['--mode', 'throughput', '--connections', '100', '--inflight', '16', '--size', '32', '--warmup', quick ? '0.3' : '1', '--duration', quick ? '1' : '5'] },
  'client-connect-rate': { metric: 'handshakes_per_s', label: 'handshakes/s', args: ['--mode', 'connect-rate', '--total', quick ? '1500' : '10000', '--concurrency', '50', '--warmup-conns', quick ? '300' : '1000'] },
};

const result = await rounds({
  scenarios: SCENARIOS,
  items: clients,
  reference: 'ws',
  count,
  label: 'client',
  async runOne(scenario, client) {
    const { child, port } = await startServer(serverCommand(server));
    try {
      return runClient(client, port, SCENARIOS[scenario].args);
    } finally {
      await stopServer(child);
    }
  },
});
const report = { meta: { date: new Date().toISOString(), node: process.version, rounds: count, server, pinning }, ...result };
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
log('');
log(`client benchmark against server "${server}", ${count} round(s), medians; ratios are client/ws`);
printTable(report, clients, 'ws');
console.log(JSON.stringify(report));
