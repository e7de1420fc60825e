// Interop with Python's `websockets` (Debian's python3-websockets 10.x under /usr/bin/python3):
// test/interop/python_client.py runs a script of echoes (up to 1 MiB, fragmented, ping) and
// close codes in both directions against our server, over ws:// and wss://, and prints JSON.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CloseInfo } from '../../src/stream/stream.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('./python_client.py', import.meta.url));
const caPath = fileURLToPath(new URL('../fixtures/tls/cert.pem', import.meta.url));

interface PythonResult {
  crash?: string;
  protocol?: string | null;
  cases: { name: string; ok: boolean; detail: string }[];
  server_close?: { code: number; reason: string };
  client_close?: { code: number; reason: string };
}

function runPython(url: string, extra: string[] = []): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, url, ...extra], { timeout: 15_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as PythonResult);
      } catch {
        reject(new Error(`python client failed (${error?.message ?? 'no JSON'}):\nstdout: ${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}

function pythonAvailable(): boolean {
  if (!existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', 'import websockets'], { timeout: 10_000 }).status === 0;
}

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function echoServer(tls: boolean): Promise<{ server: TestServer; closes: CloseInfo[]; protocols: (string | undefined)[] }> {
  const closes: CloseInfo[] = [];
  const protocols: (string | undefined)[] = [];
  const server = await startServer(
    async (stream) => {
      protocols.push(stream.protocol);
      void stream.closed.then((info) => closes.push(info));
      for await (const message of stream) {
        if (message.isText && message.text() === 'close-me') {
          await stream.close(4001, 'server bye');
          return;
        }
        await stream.send(message);
      }
    },
    { protocols: ['humphrey.test'] },
    { tls },
  );
  servers.push(server);
  return { server, closes, protocols };
}

function checkResult(result: PythonResult, closes: CloseInfo[], protocols: (string | undefined)[]): void {
  assert.equal(result.crash, undefined, `python crashed: ${result.crash}`);
  const failed = result.cases.filter((c) => !c.ok);
  assert.deepEqual(failed, [], `python cases failed: ${JSON.stringify(failed)}`);
  assert.deepEqual(
    result.cases.map((c) => c.name),
    [
      'text', 'unicode', 'empty-text', 'empty-binary', 'binary-small', 'text-125', 'binary-126', 'text-65535',
      'binary-65536', 'text-1MiB', 'binary-1MiB', 'fragmented-text', 'fragmented-binary', 'ping', 'second-connection',
    ],
  );
  assert.equal(result.protocol, 'humphrey.test');
  assert.deepEqual(protocols, ['humphrey.test', undefined]);
  // Server-initiated close: Python saw our code and reason.
  assert.deepEqual(result.server_close, { code: 4001, reason: 'server bye' });
  // Client-initiated close: we saw Python's code and reason.
  assert.equal(result.client_close?.code, 4000);
  const fromPython = closes.find((info) => info.code === 4000);
  assert.deepEqual(fromPython, { code: 4000, reason: 'python bye', wasClean: true });
  const ours = closes.find((info) => info.code === 4001);
  assert.equal(ours?.wasClean, true);
}

describe('interop: Python websockets client -> our server', { skip: !pythonAvailable() && 'no /usr/bin/python3 with the websockets package' }, () => {
  test('ws:// echoes (up to 1 MiB, fragmented), ping, subprotocol and close codes both ways', async () => {
    const { server, closes, protocols } = await echoServer(false);
    const result = await runPython(`${server.url}/python`);
    checkResult(result, closes, protocols);
  });

  test('wss:// with the test certificate', async () => {
    const { server, closes, protocols } = await echoServer(true);
    const result = await runPython(`wss://localhost:${server.port}/python`, ['--ca', caPath]);
    checkResult(result, closes, protocols);
  });
});
