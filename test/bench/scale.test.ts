// Smoke test for bench/scale.mjs: a tiny run of each setup (one process, two cluster workers,
// two processes on a real redis-server) must deliver every broadcast once and in order, and a
// broadcast must cost exactly one Redis PUBLISH. No timing thresholds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

interface Run {
  config: string;
  status?: string;
  error?: string;
  lost?: number;
  reordered?: number;
  publish_count?: Record<string, number>;
}

const root = resolve(import.meta.dirname, '..', '..');
test('scale-out bench: one process, two cluster workers and two processes on Redis deliver every broadcast, with one PUBLISH per broadcast', { timeout: 110_000 }, async () => {
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolvePromise, reject) => {
    const args = ['--quick', '--subscribers', '20', '--duration', '0.3', '--warmup', '0.1'];
    const child = spawn(process.execPath, [join(root, 'bench', 'scale.mjs'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
  assert.equal(code, 0, `bench/scale.mjs failed:\n${stderr}`);
  const report = JSON.parse(stdout) as {
    summary: Record<string, { runs_ok: number; deliveries_per_s: number | null; redis_publishes_per_broadcast?: number }>;
    runs: Run[];
  };
  for (const config of ['single', 'cluster', 'redis']) {
    const detail = JSON.stringify(report.runs.filter((run) => run.config === config));
    assert.equal(report.summary[config]?.runs_ok, 1, `${config}: ${detail}`);
    assert.ok((report.summary[config]!.deliveries_per_s ?? 0) > 0, `${config} delivered`);
  }
  for (const run of report.runs) {
    assert.equal(run.status, 'ok', `${run.config}: ${run.error}`);
    assert.equal(run.lost, 0, `${run.config}: broadcast lost messages`);
    assert.equal(run.reordered, 0, `${run.config}: broadcast reordered messages`);
  }
  // A broadcast crosses to the other process once: one PUBLISH, not one per connection.
  const counted = report.runs.find((run) => run.config === 'redis')!.publish_count!;
  assert.equal(counted.received_on_other_process, counted.broadcasts);
  assert.equal(counted.monitor_publish_broadcast, counted.broadcasts);
  assert.equal(report.summary.redis!.redis_publishes_per_broadcast, 1);
});
