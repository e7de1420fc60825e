// Smoke test for the benchmark suite (bench/run.mjs, client.mjs, tls.mjs): a reduced run of every scenario against
// every available target must produce a numeric result, and broadcast must lose nothing.
// No timing thresholds: this only keeps the suite from rotting.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

interface TargetSummary {
  skipped?: string;
  median?: Record<string, number | null>;
  ok_runs?: number;
  failed_runs?: number;
}

interface Run {
  scenario: string;
  target: string;
  status?: string;
  error?: string;
  lost?: number;
  reordered?: number;
  mismatches?: number;
  [key: string]: unknown;
}

interface Report {
  meta: { targets: string[]; scenarios: string[] };
  skipped_targets: Record<string, string>;
  scenarios: Record<string, { targets: Record<string, TargetSummary> }>;
  runs: Run[];
}

const PRIMARY: Record<string, string> = {
  'echo-small': 'msgs_per_s',
  'echo-large': 'mb_per_s',
  broadcast: 'deliveries_per_s',
  'connect-rate': 'handshakes_per_s',
  'idle-memory': 'bytes_per_conn',
};

const root = resolve(import.meta.dirname, '..', '..');

function runBench(args: string[], script = 'run.mjs'): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench', script), ...args], {
      cwd: root,
      // A smoke run never downloads Bun; the bun target runs only where Bun already is.
      env: { ...process.env, HUMPHREY_BENCH_NO_BUN_INSTALL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

test('bench suite runs every scenario and target end to end', { timeout: 110_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'humphrey-bench-'));
  try {
    const out = join(dir, 'result.json');
    const { code, stdout, stderr } = await runBench([
      '--quick',
      '--rounds',
      '1',
      '--scenarios',
      'all',
      '--connections-scale',
      'small',
      '--duration',
      '0.5',
      '--warmup',
      '0.2',
      '--quiet-wait',
      '0',
      '--retries',
      '0',
      '--out',
      out,
    ]);
    assert.equal(code, 0, `bench/run.mjs failed:\n${stderr}`);
    const report = JSON.parse(stdout) as Report;
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), report, '--out file matches stdout');

    // The reference target and the baseline must always be there.
    assert.ok(!report.skipped_targets.ws, 'ws target ran');
    assert.ok(!report.skipped_targets.baseline, 'baseline target ran');

    for (const scenario of Object.keys(PRIMARY)) {
      const s = report.scenarios[scenario];
      assert.ok(s, `scenario ${scenario} present`);
      for (const target of report.meta.targets) {
        const t = s.targets[target];
        assert.ok(t, `${scenario}/${target} present`);
        if (t.skipped) continue;
        const detail = JSON.stringify(report.runs.filter((r) => r.scenario === scenario && r.target === target));
        assert.equal(t.failed_runs, 0, `${scenario}/${target} had failed runs: ${detail}`);
        const value = t.median?.[PRIMARY[scenario]!];
        assert.equal(typeof value, 'number', `${scenario}/${target} has a numeric ${PRIMARY[scenario]}: ${detail}`);
        assert.ok(Number.isFinite(value) && (value as number) > 0, `${scenario}/${target} result is positive`);
      }
    }

    for (const run of report.runs) {
      assert.equal(run.error, undefined, `${run.scenario}/${run.target}: ${run.error}`);
      assert.equal(run.status, 'ok', `${run.scenario}/${run.target} status`);
      if (run.scenario === 'broadcast') {
        assert.equal(run.lost, 0, `${run.target}: broadcast lost messages`);
        assert.equal(run.reordered, 0, `${run.target}: broadcast reordered messages`);
      }
      if (run.scenario === 'echo-small' || run.scenario === 'echo-large') {
        assert.equal(run.mismatches, 0, `${run.target}: echoed payloads differ`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface NodeLoadReport {
  scenarios: Record<string, { metric: string; medians: Record<string, Record<string, number | null>> }>;
  runs: { error?: string }[];
}

/** bench/client.mjs and bench/tls.mjs: every load side or target gives a positive median. */
function checkNodeLoadReport(stdout: string, items: string[], scenarios: string[]): void {
  const report = JSON.parse(stdout.trim().split('\n').pop()!) as NodeLoadReport;
  for (const run of report.runs) assert.equal(run.error, undefined, JSON.stringify(run));
  assert.deepEqual(Object.keys(report.scenarios), scenarios);
  for (const s of Object.values(report.scenarios)) {
    for (const item of items) {
      const value = s.medians[item]?.[s.metric];
      assert.ok(typeof value === 'number' && value > 0, `${item}: ${s.metric} = ${value}`);
    }
  }
}

test('client benchmark runs connect() and the ws client as the load side', { timeout: 110_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'humphrey-bench-'));
  try {
    const { code, stdout, stderr } = await runBench(['--quick', '--clients', 'humphrey,humphrey-ws-compat,ws', '--out', join(dir, 'client.json')], 'client.mjs');
    assert.equal(code, 0, `bench/client.mjs failed:\n${stderr}`);
    checkNodeLoadReport(stdout, ['humphrey', 'humphrey-ws-compat', 'ws'], ['client-echo', 'client-connect-rate']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS benchmark runs the servers over wss://', { timeout: 110_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'humphrey-bench-'));
  try {
    const { code, stdout, stderr } = await runBench(['--quick', '--targets', 'ws,humphrey-sync,humphrey-async', '--out', join(dir, 'tls.json')], 'tls.mjs');
    assert.equal(code, 0, `bench/tls.mjs failed:\n${stderr}`);
    checkNodeLoadReport(stdout, ['ws', 'humphrey-sync', 'humphrey-async'], ['tls-echo-small', 'tls-connect-rate']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
