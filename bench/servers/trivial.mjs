// Baseline target: the least work a WebSocket server can do on node:net.
// It answers the handshake, then streams every client frame back (echo) or to every
// connection (broadcast) with the mask removed; no message assembly, no validation, no
// per-message objects. Output produced in one event-loop turn is written once per socket
// in the check phase. Its only purpose is to show how fast the load generator can go: the
// generator must drive this server faster than any server under test.
//
// usage: node trivial.mjs <scenario>     prints the listening port on stdout
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let nativeUnmask = null;
try {
  nativeUnmask = require('bufferutil').unmask;
} catch {}

const scenario = process.argv[2] ?? 'echo-small';
const broadcast = scenario === 'broadcast';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const open = new Set();
const rot = Buffer.alloc(4);

// ---- per-turn output batching
let dirty = [];
let scheduled = false;
let bcast = []; // broadcast output gathered this turn
function schedule() {
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
function flushAll() {
  scheduled = false;
  if (bcast.length) {
    const out = bcast.length === 1 ? bcast[0] : Buffer.concat(bcast);
    bcast = [];
    for (const s of open) s.write(out);
  }
  const list = dirty;
  dirty = [];
  for (const st of list) {
    const bufs = st.out;
    st.out = null;
    if (st.socket.destroyed) continue;
    if (bufs.length === 1) st.socket.write(bufs[0]);
    else if (st.outBytes <= 65536) st.socket.write(Buffer.concat(bufs, st.outBytes));
    else {
      st.socket.cork();
      for (const b of bufs) st.socket.write(b);
      st.socket.uncork();
    }
    st.outBytes = 0;
    if (st.closing) {
      open.delete(st.socket);
      st.socket.end();
    }
  }
}

// Unmask `len` bytes at `from` into `to` (to <= from) of `buf`; mask bytes start at `phase`.
function unmaskMove(buf, from, to, len, mask, phase) {
  for (let i = 0; i < len; i++) buf[to + i] = buf[from + i] ^ mask[(phase + i) & 3];
}

// Unmask in place with the native helper (mask rotated to `phase`).
function unmaskInPlace(part, mask, phase) {
  if (!nativeUnmask) return unmaskMove(part, 0, 0, part.length, mask, phase);
  for (let i = 0; i < 4; i++) rot[i] = mask[(phase + i) & 3];
  nativeUnmask(part, rot);
}

function accept(key) {
  return createHash('sha1').update(key + GUID).digest('base64');
}

function onConnection(socket) {
  // Connection state. A frame header that straddles two chunks is staged in `hdr`.
  const st = { socket, out: null, outBytes: 0, closing: false };
  let upgraded = false;
  let head = null;
  const hdr = Buffer.alloc(14);
  let hdrLen = 0;
  let remaining = 0; // payload bytes left in the current frame
  const mask = [0, 0, 0, 0];
  let phase = 0;

  function emit(buf) {
    if (broadcast && !st.closing) bcast.push(buf);
    else {
      if (st.out === null) {
        st.out = [buf];
        dirty.push(st);
      } else st.out.push(buf);
      st.outBytes += buf.length;
    }
    schedule();
  }

  // Rewrite client frames in `chunk` in place into server frames (a server header is the
  // client header minus the 4-byte key, so output never overtakes input). Small payloads are
  // compacted into the segment [seg, w); large payload pieces are unmasked where they are
  // and emitted as their own slices, with no copy.
  function frames(chunk) {
    const n = chunk.length;
    let pos = 0;
    let seg = 0;
    let w = 0;
    while (pos < n) {
      if (remaining > 0) {
        const take = remaining < n - pos ? remaining : n - pos;
        if (take > 256) {
          if (w > seg) emit(chunk.subarray(seg, w));
          const part = chunk.subarray(pos, pos + take);
          unmaskInPlace(part, mask, phase);
          emit(part);
          seg = w = pos + take;
        } else {
          unmaskMove(chunk, pos, w, take, mask, phase);
          w += take;
        }
        phase = (phase + take) & 3;
        pos += take;
        remaining -= take;
        continue;
      }
      let b0, b1, len, hl;
      if (hdrLen === 0 && n - pos >= 2) {
        // fast path: header entirely in this chunk
        b0 = chunk[pos];
        b1 = chunk[pos + 1];
        const l7 = b1 & 0x7f;
        hl = l7 < 126 ? 6 : l7 === 126 ? 8 : 14;
        if (n - pos < hl) {
          chunk.copy(hdr, 0, pos, n);
          hdrLen = n - pos;
          pos = n;
          break;
        }
        len = l7 < 126 ? l7 : l7 === 126 ? chunk.readUInt16BE(pos + 2) : Number(chunk.readBigUInt64BE(pos + 2));
        for (let i = 0; i < 4; i++) mask[i] = chunk[pos + hl - 4 + i];
        // server header in place
        chunk[w] = b0;
        chunk[w + 1] = l7;
        if (hl > 6) chunk.copy(chunk, w + 2, pos + 2, pos + hl - 4);
        w += hl - 4;
        pos += hl;
      } else {
        while (hdrLen < 2 && pos < n) hdr[hdrLen++] = chunk[pos++];
        if (hdrLen < 2) break;
        const l7 = hdr[1] & 0x7f;
        hl = l7 < 126 ? 6 : l7 === 126 ? 8 : 14;
        while (hdrLen < hl && pos < n) hdr[hdrLen++] = chunk[pos++];
        if (hdrLen < hl) break;
        b0 = hdr[0];
        len = l7 < 126 ? l7 : l7 === 126 ? hdr.readUInt16BE(2) : Number(hdr.readBigUInt64BE(2));
        for (let i = 0; i < 4; i++) mask[i] = hdr[hl - 4 + i];
        hdr[1] = l7;
        hdrLen = 0;
        if (w + hl - 4 <= pos) {
          hdr.copy(chunk, w, 0, hl - 4);
          w += hl - 4;
        } else {
          // only possible at the start of a chunk (w === seg === 0)
          emit(Buffer.from(hdr.subarray(0, hl - 4)));
          seg = w = pos;
        }
      }
      if ((b0 & 0x0f) === 8) st.closing = true;
      remaining = len;
      phase = 0;
    }
    if (w > seg) emit(chunk.subarray(seg, w));
  }

  socket.on('data', (chunk) => {
    if (!upgraded) {
      head = head === null ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.toString('latin1', 0, end);
      const m = /\r\nsec-websocket-key:[ \t]*([^\r\n]+)/i.exec(text);
      if (!m) {
        socket.destroy();
        return;
      }
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${accept(m[1].trim())}\r\n\r\n`,
      );
      upgraded = true;
      open.add(socket);
      chunk = head.subarray(end + 4);
      head = null;
      if (chunk.length === 0) return;
    }
    frames(chunk);
  });
  socket.on('error', () => {});
  socket.on('close', () => open.delete(socket));
}

// BENCH_TLS_CERT/BENCH_TLS_KEY (PEM paths) serve the same over node:tls (bench/tls.mjs): Node's TLS floor.
const server = process.env.BENCH_TLS_CERT
  ? createTlsServer({ cert: readFileSync(process.env.BENCH_TLS_CERT), key: readFileSync(process.env.BENCH_TLS_KEY), noDelay: true }, onConnection)
  : createServer({ noDelay: true }, onConnection);
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
