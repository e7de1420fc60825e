// npm run soak: thousands of loopback connections doing random things to `humphrey-ws echo`
// (sync and/or async mode, optionally over TLS) for a bounded time, with every echo checked.
//
//   npm run soak -- [--seconds 60] [--connections 2000] [--mode sync|async|both] [--tls]
//                   [--total 1000000] [--seed N]
//
// --connections clients are kept open at once; each one, when done, is replaced by a new one
// until --seconds have passed or --total connections were made. A client does 1 to 40 random
// operations (text and binary messages of random sizes, fragmented messages with empty
// fragments and pings between them, pings, pauses in reading, pauses in sending) and then ends
// in one of several ways: a close handshake, a close frame followed by its TCP end
// (half-open), a TCP end without close, a reset (sometimes mid-frame), or a reset in the middle
// of a large message.
//
// Checked: on every connection the echoes that arrive are exactly the messages sent, in order
// (length, kind and SHA-1); on a connection that closed cleanly all of them arrived, and every
// ping got its pong. After all clients are gone the server's descriptors come back to where
// they started, its RSS comes back near where it was after a warm-up phase (see RSS_SLACK),
// and it never crashed or exited other than with 0 on SIGTERM.
// Prints one JSON report per mode; exits 1 if any check failed.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { closeFrame, frame, OP, Peer, targetOf } from '../test/hardening/peer.ts';

const ROOT = new URL('..', import.meta.url);
const CERT = 'test/fixtures/tls/cert.pem';
const KEY = 'test/fixtures/tls/key.pem';
/**
 * How far above its RSS after the warm-up the server may be once every client has gone. V8
 * keeps heap it has grown into and malloc keeps freed arenas, so RSS does not return to the
 * very start; the warm-up grows them to what the load needs. A leak of even 1 KiB per
 * connection over the tens of thousands a run makes would be over this.
 */
const RSS_SLACK = 48 * 1024 * 1024;
/** Bytes a client may have sent that are not echoed yet before it waits. */
const MAX_OUTSTANDING = 256 * 1024;

function parseArgs(argv) {
  const options = { seconds: 60, connections: 2000, mode: 'both', tls: false, total: 1_000_000, seed: Date.now() % 1_000_000 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'tls') {
      options.tls = true;
      continue;
    }
    const value = argv[++i];
    if (!(name in options) || value === undefined) throw new Error(`usage: soak [--seconds N] [--connections N] [--mode sync|async|both] [--tls] [--total N] [--seed N] (bad: ${argv[i - 1]})`);
    options[name] = name === 'mode' ? value : Number(value);
  }
  if (!['sync', 'async', 'both'].includes(options.mode)) throw new Error('--mode is sync, async or both');
  return options;
}

/** mulberry32: reproducible randomness for the operation mix. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const digest = (data) => createHash('sha1').update(data).digest('base64');

function procStats(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    readBytes: Number(/rchar: (\d+)/.exec(io)[1]),
    writtenBytes: Number(/wchar: (\d+)/.exec(io)[1]),
  };
}

async function startServer(mode, tls) {
  const args = ['bin/humphrey-ws.js', 'echo', '--host', '127.0.0.1', '--port', '0', '--mode', mode];
  if (tls) args.push('--cert', CERT, '--key', KEY);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text) => (stderr += text));
  const url = await new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (text) => {
      stdout += text;
      const match = /listening on (\S+)/.exec(stdout);
      if (match) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr };
}

/** Text of `length` bytes (ASCII with some 2- and 3-byte characters), or random bytes. */
function payload(random, isText, length) {
  const out = randomBytes(length);
  if (!isText) return out;
  // Printable ASCII, with a 2- or 3-byte character about every 20 bytes.
  for (let i = 0; i < length; i++) out[i] = 32 + (out[i] % 95);
  for (let at = Math.floor(random() * 40); at + 3 <= length; at += 1 + Math.floor(random() * 40)) {
    at += out.write(random() < 0.5 ? 'é' : '✓', at);
  }
  return out;
}

function size(random) {
  const r = random();
  if (r < 0.6) return Math.floor(random() * 126);
  if (r < 0.9) return Math.floor(random() * 8192);
  if (r < 0.99) return Math.floor(random() * 65536);
  return Math.floor(random() * 256 * 1024);
}

/** One client's life; adds what it did and found to `totals`. */
async function life(target, random, totals) {
  let peer;
  try {
    peer = await Peer.open(target, { timeoutMs: 60_000 });
  } catch (error) {
    totals.handshakeFailures++;
    totals.problems.push(`handshake failed: ${error.message}`);
    return;
  }
  totals.connections++;
  const log = []; // what this client did, for a report of a lost echo
  const expected = []; // { isText, length, hash } of messages sent, not echoed yet
  const pings = []; // payloads of pings sent, not answered yet
  let outstanding = 0;
  let closeCode = null;
  let corrupt = null;
  let progress = null;
  peer.onEvent = (event) => {
    if (event.type === 'message') {
      const want = expected.shift();
      totals.echoed++;
      totals.echoedBytes += event.data.length;
      if (want === undefined) corrupt ??= `an echo nothing was sent for (${event.data.length} bytes)`;
      else if (want.isText !== event.isText || want.length !== event.data.length || want.hash !== digest(event.data)) {
        corrupt ??= `echo ${totals.echoed} differs: sent ${want.isText ? 'text' : 'binary'} of ${want.length}, got ${event.isText ? 'text' : 'binary'} of ${event.data.length}`;
      } else outstanding -= want.length;
    } else if (event.type === 'pong') {
      const want = pings.shift();
      if (want === undefined || !want.equals(event.data)) corrupt ??= 'a pong that answers no ping';
    } else if (event.type === 'close') {
      closeCode = event.code ?? 1005;
    } else if (event.type === 'violation') {
      corrupt ??= `protocol violation: ${event.what}`;
    }
    if (progress) progress();
  };
  const socket = peer.socket;
  const write = async (bytes) => {
    if (!socket.write(bytes)) await Promise.race([once(socket, 'drain'), peer.closed]);
  };
  const waitFor = async (condition, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    while (!condition() && !socket.destroyed && Date.now() < deadline) {
      await Promise.race([new Promise((resolve) => (progress = resolve)), sleep(100)]);
    }
    progress = null;
  };
  const sendMessage = async (isText, data, frames) => {
    expected.push({ isText, length: data.length, hash: digest(data) });
    outstanding += data.length;
    totals.sent++;
    totals.sentBytes += data.length;
    log.push(`${frames.length > 1 ? 'fragmented ' : ''}${isText ? 'text' : 'binary'}:${data.length}`);
    await write(Buffer.concat(frames));
    if (outstanding > MAX_OUTSTANDING) await waitFor(() => outstanding <= MAX_OUTSTANDING / 2, 60_000);
  };

  try {
    const operations = 1 + Math.floor(random() * 40);
    for (let i = 0; i < operations && !socket.destroyed; i++) {
      const r = random();
      if (r < 0.35 || r >= 0.95) {
        const isText = random() < 0.5;
        const data = payload(random, isText, size(random));
        await sendMessage(isText, data, [frame(isText ? OP.TEXT : OP.BINARY, data)]);
      } else if (r < 0.55) {
        // Fragmented, with empty fragments and pings between the fragments.
        const isText = random() < 0.5;
        const data = payload(random, isText, size(random));
        const count = 2 + Math.floor(random() * 20);
        const frames = [];
        let offset = 0;
        for (let f = 0; f < count; f++) {
          const end = f === count - 1 ? data.length : random() < 0.2 ? offset : Math.min(data.length, offset + Math.floor(random() * (data.length / count + 2)));
          frames.push(frame(f === 0 ? (isText ? OP.TEXT : OP.BINARY) : OP.CONT, data.subarray(offset, end), f === count - 1));
          offset = end;
          if (f < count - 1 && random() < 0.1) {
            const ping = randomBytes(Math.floor(random() * 126));
            pings.push(ping);
            totals.pings++;
            frames.push(frame(OP.PING, ping));
          }
        }
        totals.fragmented++;
        await sendMessage(isText, data, frames);
      } else if (r < 0.7) {
        const ping = randomBytes(Math.floor(random() * 126));
        pings.push(ping);
        totals.pings++;
        log.push('ping');
        await write(frame(OP.PING, ping));
      } else if (r < 0.85) {
        // A slow reader: stop reading for a while (sending goes on).
        totals.slowReads++;
        log.push('pause');
        socket.pause();
        setTimeout(() => socket.resume(), Math.floor(random() * 1000));
      } else {
        await sleep(Math.floor(random() * 200));
      }
    }

    const ending = random();
    if (ending < 0.55 || ending >= 0.65 && ending < 0.75) {
      // A close handshake; in the second range as a half-open close (our TCP end at once).
      const halfOpen = ending >= 0.65;
      socket.resume();
      if (halfOpen) socket.end(closeFrame(1000));
      else await write(closeFrame(1000));
      await waitFor(() => closeCode !== null, 60_000);
      await Promise.race([peer.closed, sleep(30_000)]);
      if (closeCode !== 1000) totals.problems.push(`clean close answered with ${closeCode}`);
      else if (!socket.destroyed) totals.problems.push('server did not close TCP after the close handshake');
      else {
        totals[halfOpen ? 'halfOpenCloses' : 'cleanCloses']++;
        if (expected.length > 0) {
          totals.lost += expected.length;
          totals.lostDetails.push(`${expected.length} of ${log.length} after a ${halfOpen ? 'half-open close' : 'close'}; operations: ${log.join(' ')}`);
        }
        if (pings.length > 0) totals.problems.push(`${pings.length} ping(s) without a pong on a clean close`);
      }
    } else if (ending < 0.65) {
      // A reset: sometimes in the middle of a frame.
      if (random() < 0.5) socket.write(frame(OP.BINARY, randomBytes(1000)).subarray(0, 1 + Math.floor(random() * 1000)));
      totals.resets++;
      peer.reset();
    } else if (ending < 0.85) {
      // A TCP end without a close frame: the server must close its side too.
      socket.resume();
      socket.end();
      await Promise.race([peer.closed, sleep(30_000)]);
      if (!socket.destroyed) totals.problems.push('server did not close TCP after the client ended');
      totals.tcpEnds++;
    } else {
      // A reset in the middle of a large message.
      const length = 1024 * 1024 + Math.floor(random() * 3 * 1024 * 1024);
      await write(frame(OP.BINARY, randomBytes(Math.floor(length * random())), true, true, length));
      totals.resetsMidLarge++;
      peer.reset();
    }
  } catch (error) {
    totals.problems.push(`client error: ${error.message}`);
  } finally {
    if (corrupt !== null) totals.corrupt.push(corrupt);
    if (!socket.destroyed) socket.destroy();
  }
}

async function soak(mode, options) {
  const server = await startServer(mode, options.tls);
  const pid = server.child.pid;
  let crashed = null;
  let stopping = false;
  server.child.once('exit', (code, signal) => {
    if (!stopping) crashed = `exited with ${code ?? signal}`;
  });
  const target = targetOf(server.url, readFileSync(new URL(CERT, ROOT)));
  await sleep(500);
  const start = procStats(pid);
  const peak = { rss: start.rss, fds: start.fds };
  const sampler = setInterval(() => {
    if (crashed) return;
    const now = procStats(pid);
    peak.rss = Math.max(peak.rss, now.rss);
    peak.fds = Math.max(peak.fds, now.fds);
  }, 250);

  const totals = {
    connections: 0, sent: 0, sentBytes: 0, echoed: 0, echoedBytes: 0, fragmented: 0, pings: 0, slowReads: 0,
    cleanCloses: 0, halfOpenCloses: 0, tcpEnds: 0, resets: 0, resetsMidLarge: 0,
    lost: 0, lostDetails: [], handshakeFailures: 0, corrupt: [], problems: [],
  };
  const random = prng(options.seed + (mode === 'async' ? 1 : 0));
  // The clients' own event loop: when it lags past the server's 10 s head timeout, a client
  // that connected writes its request too late and is dropped; reported so that is visible.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  let started = 0;
  /** Keeps `options.connections` clients going for `seconds`, then waits until all are done. */
  const phase = async (seconds) => {
    const began = Date.now();
    const deadline = began + seconds * 1000;
    const worker = async () => {
      while (Date.now() < deadline && started < options.total && !crashed) {
        started++;
        await life(target, prng(Math.floor(random() * 2 ** 32)), totals);
      }
    };
    const progress = setInterval(() => {
      process.stderr.write(`soak ${mode}: ${Math.round((Date.now() - began) / 1000)} s, ${totals.connections} connections, ${totals.sent} sent, ${totals.echoed} echoed, ${totals.problems.length} problems\n`);
    }, 10_000);
    // Ramp up over the first seconds rather than thousands of SYNs at once.
    const workers = [];
    for (let i = 0; i < options.connections; i++) {
      workers.push(worker());
      if (i % 100 === 99) await sleep(100);
    }
    await Promise.all(workers);
    clearInterval(progress);
    return (Date.now() - began) / 1000;
  };
  /** After the clients have gone: waits for the descriptors to come back (close timeouts are 5 s). */
  const settle = async () => {
    const until = Date.now() + 30_000;
    while (!crashed && procStats(pid).fds > start.fds && Date.now() < until) await sleep(250);
    await sleep(2000);
    return crashed ? null : procStats(pid);
  };

  // A warm-up: V8's heap and malloc's arenas grow to what this load needs and stay there, so
  // the end is compared with the RSS after the warm-up (a leak grows with every connection).
  const warmupSeconds = Math.min(20, Math.max(1, options.seconds / 10));
  let ran = await phase(warmupSeconds);
  const warm = await settle();
  if (warm) ran += await phase(options.seconds - warmupSeconds);
  const end = warm ? await settle() : null;
  clearInterval(sampler);
  loopDelay.disable();
  stopping = true;
  const stopped = crashed ? null : once(server.child, 'exit');
  if (!crashed) server.child.kill('SIGTERM');
  const exitCode = stopped ? (await stopped)[0] : null;

  const failures = [];
  if (crashed) failures.push(`server ${crashed}: ${server.stderr().slice(0, 2000)}`);
  if (end && end.fds > start.fds) failures.push(`server holds ${end.fds} descriptors after all clients left, ${start.fds} at the start`);
  if (end && warm && end.rss > warm.rss + RSS_SLACK) failures.push(`server RSS ${mib(end.rss)} MiB after all clients left, ${mib(warm.rss)} MiB after the warm-up`);
  if (totals.lost > 0) failures.push(`${totals.lost} echo(es) lost on cleanly closed connections: ${totals.lostDetails.slice(0, 3).join(' | ')}`);
  if (totals.corrupt.length > 0) failures.push(`${totals.corrupt.length} connection(s) with a wrong echo, e.g. ${totals.corrupt[0]}`);
  if (totals.problems.length > 0) failures.push(`${totals.problems.length} problem(s), e.g. ${[...new Set(totals.problems)].slice(0, 5).join('; ')}`);
  if (exitCode !== null && exitCode !== 0) failures.push(`server exited with ${exitCode} on SIGTERM`);
  if (/Unhandled|uncaught/i.test(server.stderr())) failures.push(`server stderr: ${server.stderr().slice(0, 2000)}`);

  return {
    mode,
    tls: options.tls,
    seconds: Math.round(ran),
    concurrentConnections: options.connections,
    seed: options.seed,
    server: {
      start: { rssMiB: mib(start.rss), fds: start.fds },
      afterWarmup: warm ? { rssMiB: mib(warm.rss), fds: warm.fds } : null,
      peak: { rssMiB: mib(peak.rss), fds: peak.fds },
      end: end ? { rssMiB: mib(end.rss), fds: end.fds } : null,
      bytesRead: end ? end.readBytes - start.readBytes : null,
      bytesWritten: end ? end.writtenBytes - start.writtenBytes : null,
    },
    clients: {
      connections: totals.connections,
      messagesSent: totals.sent,
      bytesSent: totals.sentBytes,
      messagesEchoed: totals.echoed,
      bytesEchoed: totals.echoedBytes,
      fragmentedMessages: totals.fragmented,
      pings: totals.pings,
      slowReads: totals.slowReads,
      endings: { close: totals.cleanCloses, halfOpenClose: totals.halfOpenCloses, tcpEnd: totals.tcpEnds, reset: totals.resets, resetMidLargeMessage: totals.resetsMidLarge },
      handshakeFailures: totals.handshakeFailures,
      eventLoopDelayMs: { p99: Math.round(loopDelay.percentile(99) / 1e6), max: Math.round(loopDelay.max / 1e6) },
    },
    failures,
  };
}

const mib = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;

const options = parseArgs(process.argv.slice(2));
const modes = options.mode === 'both' ? ['sync', 'async'] : [options.mode];
let failed = false;
for (const mode of modes) {
  const report = await soak(mode, options);
  console.log(JSON.stringify(report, null, 2));
  if (report.failures.length > 0) failed = true;
}
process.exit(failed ? 1 : 0);
