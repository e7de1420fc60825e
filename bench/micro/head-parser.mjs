#!/usr/bin/env node
// Micro-benchmark of the handshake's CPU path: parsing a typical browser upgrade request head
// (`parseRequestHead`) and validating it (`validateUpgradeRequest`), in one process, no I/O.
//
//   node bench/micro/head-parser.mjs [--dist DIR] [--rounds N] [--ms PER_ROUND]
//
// `--dist` points at a built `dist/` (default: this checkout's), so two builds can be compared
// one after the other on the same machine. Prints JSON: the median nanoseconds per operation
// (CPU time) over the rounds, and every round's figure.
import { resolve, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 && args[at + 1] !== undefined ? args[at + 1] : fallback;
};
const dist = resolve(option('--dist', join(here, '..', '..', 'dist')));
const rounds = Number(option('--rounds', '15'));
const msPerRound = Number(option('--ms', '300'));

const { parseRequestHead } = await import(pathToFileURL(join(dist, 'protocol', 'http1.js')).href);
const { validateUpgradeRequest } = await import(pathToFileURL(join(dist, 'protocol', 'handshake.js')).href);

// What Chromium sends for `new WebSocket('ws://localhost:8080/chat')` from a page, byte for byte
// in shape (header order, sizes), with a typical cookie.
const browserRequest = Buffer.from(
  'GET /chat HTTP/1.1\r\n' +
    'Host: localhost:8080\r\n' +
    'Connection: Upgrade\r\n' +
    'Pragma: no-cache\r\n' +
    'Cache-Control: no-cache\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n' +
    'Upgrade: websocket\r\n' +
    'Origin: http://localhost:8080\r\n' +
    'Sec-WebSocket-Version: 13\r\n' +
    'Accept-Encoding: gzip, deflate, br, zstd\r\n' +
    'Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n' +
    'Cookie: session=8f2c1e0b7d4a4c3e9b1f; theme=dark\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
    '\r\n',
  'latin1',
);

function check() {
  const result = parseRequestHead(browserRequest);
  if (!result?.ok) throw new Error(`the benchmark request does not parse: ${JSON.stringify(result)}`);
  const verdict = validateUpgradeRequest(result.head);
  if (!verdict.ok) throw new Error(`the benchmark request is refused: ${JSON.stringify(verdict)}`);
}

let sink = 0;
const cases = {
  parse: () => {
    const result = parseRequestHead(browserRequest);
    sink += result.length;
  },
  'parse+validate': () => {
    const result = parseRequestHead(browserRequest);
    sink += validateUpgradeRequest(result.head).accept.length;
  },
};

/**
 * CPU nanoseconds per call of `fn`, run in batches for about `ms` milliseconds of CPU time.
 * CPU time rather than wall time, so that time the process spends waiting for a core on a
 * shared machine does not count.
 */
function measure(fn, ms) {
  let calls = 0;
  const start = process.cpuUsage();
  let used = 0;
  while (used < ms * 1000) {
    for (let i = 0; i < 1000; i++) fn();
    calls += 1000;
    const now = process.cpuUsage(start);
    used = now.user + now.system;
  }
  return (used * 1000) / calls;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

check();
const report = { dist, requestBytes: browserRequest.length, rounds, msPerRound, results: {} };
for (const [name, fn] of Object.entries(cases)) measure(fn, 500); // warm-up
for (const [name, fn] of Object.entries(cases)) {
  const perRound = [];
  for (let r = 0; r < rounds; r++) perRound.push(measure(fn, msPerRound));
  report.results[name] = { medianNs: Math.round(median(perRound)), roundsNs: perRound.map(Math.round) };
}
if (sink === 0) console.error('unreachable');
console.log(JSON.stringify(report, null, 2));
