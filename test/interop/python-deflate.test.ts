// permessage-deflate interop with Python's `websockets` (Debian's python3-websockets under
// /usr/bin/python3): test/interop/python_deflate_client.py offers the extension, echoes text
// and binary of several sizes (whole and fragmented) and reports what was negotiated.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PerMessageDeflateOptions } from '../../src/protocol/deflate/negotiate.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PYTHON = '/usr/bin/python3';
const script = fileURLToPath(new URL('./python_deflate_client.py', import.meta.url));

interface Result {
  crash?: string;
  extensions: { name: string; remote_no_context_takeover: boolean; local_no_context_takeover: boolean; remote_max_window_bits: number | null; local_max_window_bits: number | null }[];
  cases: { name: string; ok: boolean }[];
}

function runPython(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, ...args], { timeout: 30_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as Result);
      } catch {
        reject(new Error(`python client failed (${error?.message ?? 'no JSON'}):\nstdout: ${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

async function echo(perMessageDeflate: PerMessageDeflateOptions): Promise<{ server: TestServer }> {
  const server = await startServer(async (stream) => {
    for await (const message of stream) await stream.send(message);
  }, { perMessageDeflate, maxMessageSize: 1 << 24 });
  servers.push(server);
  return { server };
}

function checkCases(result: Result): void {
  assert.equal(result.crash, undefined, `python crashed: ${result.crash}`);
  assert.equal(result.cases.length, 21);
  assert.deepEqual(result.cases.filter((c) => !c.ok), []);
}

describe('interop: Python websockets with permessage-deflate -> our server', () => {
  test('defaults: context takeover both ways', async () => {
    const { server } = await echo({ threshold: 0 });
    const result = await runPython([`${server.url}/`]);
    checkCases(result);
    assert.deepEqual(result.extensions.map((e) => [e.name, e.remote_no_context_takeover, e.local_no_context_takeover]), [['permessage-deflate', false, false]]);
  });

  test('server policy: no context takeover and smaller windows', async () => {
    const { server } = await echo({ threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 });
    const result = await runPython([`${server.url}/`]);
    checkCases(result);
    const [agreed] = result.extensions;
    assert.deepEqual(
      [agreed!.remote_no_context_takeover, agreed!.local_no_context_takeover, agreed!.remote_max_window_bits, agreed!.local_max_window_bits],
      [true, true, 10, 11],
    );
  });

  test('the client asks for a server window of 9 and no client context takeover', async () => {
    const { server } = await echo({ threshold: 0 });
    const result = await runPython([`${server.url}/`, '9', '1']);
    checkCases(result);
    const [agreed] = result.extensions;
    assert.deepEqual([agreed!.remote_max_window_bits, agreed!.local_no_context_takeover], [9, true]);
  });
});
