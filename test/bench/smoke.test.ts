// Smoke test for the benchmark suite (bench/run.mjs): a reduced run of every scenario against
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

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(root, 'bench', 'run.mjs'), ...args], {
      cwd: root,
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
