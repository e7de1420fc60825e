// Baseline target: the least work a WebSocket server can do on node:net.
// It answers the handshake, then streams every client frame back (echo) or to every
// connection (broadcast) with the mask removed; no message assembly, no validation.
// Its only purpose is to show how fast the load generator can go: the generator must
// drive this server faster than any server under test.
//
// usage: node trivial.mjs <scenario>     prints the listening port on stdout
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let unmask;
try {
  unmask = require('bufferutil').unmask;
} catch {
  unmask = (buf, mask) => {
    for (let i = 0; i < buf.length; i++) buf[i] ^= mask[i & 3];
  };
}

const scenario = process.argv[2] ?? 'echo-small';
const broadcast = scenario === 'broadcast';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const open = new Set();

function accept(key) {
  return createHash('sha1').update(key + GUID).digest('base64');
}

function onConnection(socket) {
  socket.setNoDelay(true);
  let head = null; // pending handshake bytes
  let hdr = Buffer.alloc(14); // partial frame header
  let hdrLen = 0;
  let remaining = 0; // payload bytes left in the current frame
  const mask = Buffer.alloc(4);
  let maskOff = 0;
  let closing = false;
  let upgraded = false;
  const rot = Buffer.alloc(4);

  const emit = broadcast
    ? (bufs) => {
        const out = bufs.length === 1 ? bufs[0] : Buffer.concat(bufs);
        for (const s of open) s.write(out);
      }
    : (bufs) => {
        if (bufs.length === 1) socket.write(bufs[0]);
        else {
          socket.cork();
          for (const b of bufs) socket.write(b);
          socket.uncork();
        }
      };

  function frames(chunk) {
    let prefix = null; // header that began in an earlier chunk (only ever at w === 0)
    let pos = 0;
    // In-place output cursor: a server header is 4 bytes shorter than the client header
    // (no masking key), so unmasked frames are compacted into the chunk itself.
    let w = 0;
    const n = chunk.length;
    while (pos < n) {
      if (remaining > 0) {
        const take = Math.min(remaining, n - pos);
        const part = chunk.subarray(pos, pos + take);
        if (maskOff === 0) unmask(part, mask);
        else {
          for (let i = 0; i < 4; i++) rot[i] = mask[(maskOff + i) & 3];
          unmask(part, rot);
        }
        maskOff = (maskOff + take) & 3;
        if (w !== pos) chunk.copy(chunk, w, pos, pos + take);
        w += take;
        pos += take;
        remaining -= take;
        continue;
      }
      while (hdrLen < 2 && pos < n) hdr[hdrLen++] = chunk[pos++];
      if (hdrLen < 2) break;
      const len7 = hdr[1] & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + 4;
      while (hdrLen < need && pos < n) hdr[hdrLen++] = chunk[pos++];
      if (hdrLen < need) break;
      remaining = len7 === 126 ? hdr.readUInt16BE(2) : len7 === 127 ? Number(hdr.readBigUInt64BE(2)) : len7;
      if ((hdr[0] & 0x0f) === 8) closing = true;
      hdr.copy(mask, 0, need - 4, need);
      maskOff = 0;
      hdrLen = 0;
      const outHdrLen = need - 4;
      hdr[1] &= 0x7f;
      if (w + outHdrLen <= pos) {
        hdr.copy(chunk, w, 0, outHdrLen);
        w += outHdrLen;
      } else {
        prefix = Buffer.from(hdr.subarray(0, outHdrLen));
      }
    }
    const out = [];
    if (prefix) out.push(prefix);
    if (w > 0) out.push(chunk.subarray(0, w));
    return out;
  }

  socket.on('data', (chunk) => {
    if (!upgraded) {
      head = head ? Buffer.concat([head, chunk]) : chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = head.toString('latin1', 0, end);
      const m = /\r\nsec-websocket-key:\s*([^\r\n]+)/i.exec(text);
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
    const out = frames(chunk);
    if (out.length) {
      if (closing) socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
      else emit(out);
    }
    if (closing) {
      open.delete(socket);
      socket.end();
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => open.delete(socket));
}

const server = createServer({ noDelay: true }, onConnection);
server.listen(0, '127.0.0.1', () => {
  console.log(server.address().port);
});
