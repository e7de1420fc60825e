// Target "ws": the ws package (v8) with its optional native add-ons.
// usage: node ws-8.mjs <scenario>   prints an info JSON line, then the listening port
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { WebSocketServer } from 'ws';

const scenario = process.argv[2] ?? 'echo-small';
const require = createRequire(import.meta.url);

// Report which native helpers ws really uses. ws resolves 'bufferutil' from its own
// directory, so resolve from there too and check the functions are native, not fallback.js.
function nativeInfo() {
  const wsRequire = createRequire(require.resolve('ws'));
  const info = { ws: wsRequire('./package.json').version };
  try {
    const bu = wsRequire('bufferutil');
    const isNative = /\[native code\]/.test(String(bu.mask)) && /\[native code\]/.test(String(bu.unmask));
    info.bufferutil = isNative ? 'native' : 'js-fallback';
  } catch (err) {
    info.bufferutil = `missing: ${err.code ?? err.message}`;
  }
  try {
    const v = wsRequire('utf-8-validate');
    info.utf8Validate = /\[native code\]/.test(String(v)) ? 'native' : 'js-fallback';
  } catch (err) {
    info.utf8Validate = `missing: ${err.code ?? err.message}`;
  }
  // ws 8 prefers node's own helpers when they exist (http.websocketMask, buffer.isUtf8).
  const http = require('node:http');
  const { isUtf8 } = require('node:buffer');
  info.maskImpl = http.websocketMask ? 'node:http websocketMask' : info.bufferutil === 'native' ? 'bufferutil (native)' : 'js';
  info.utf8Impl = isUtf8 ? 'node:buffer isUtf8 (native)' : info.utf8Validate === 'native' ? 'utf-8-validate (native)' : 'js';
  // Check that ws's buffer-util really wired bufferutil in (its wrappers call bufferUtil.mask).
  try {
    const bufferUtil = wsRequire('./lib/buffer-util.js');
    info.wsMaskWired = /bufferUtil\.mask|websocketMask/.test(String(bufferUtil.mask));
  } catch {
    info.wsMaskWired = null;
  }
  return info;
}

// BENCH_TLS_CERT/BENCH_TLS_KEY (PEM paths) serve wss:// instead (bench/tls.mjs), as ws users do: on an https server.
const https = process.env.BENCH_TLS_CERT
  ? createHttpsServer({ cert: readFileSync(process.env.BENCH_TLS_CERT), key: readFileSync(process.env.BENCH_TLS_KEY) })
  : null;
const wss = new WebSocketServer({
  ...(https ? { server: https } : { host: '127.0.0.1', port: 0 }),
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
});

if (scenario === 'broadcast') {
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      for (const c of wss.clients) c.send(data, { binary: isBinary });
    });
  });
} else {
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
}

wss.on('listening', () => {
  console.log(JSON.stringify({ info: nativeInfo() }));
  console.log(wss.address().port);
});
https?.listen(0, '127.0.0.1');
