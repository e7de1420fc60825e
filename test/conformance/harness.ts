// Shared glue for the conformance test files: one target server per file, bounded timeouts and
// the list of known deviations of reference targets (reported as "todo", never hidden).

import { before, after } from 'node:test';
import { startTarget, targetName, type Target, type TargetOptions } from './target.js';
import { toBuffer, type Bytes } from './raw-client.js';

/** Per-test timeout for ordinary cases. */
export const TEST_MS = 5_000;
/** Per-test timeout for multi-megabyte cases. */
export const BIG_TEST_MS = 30_000;

/** Starts a target in `before` and stops it in `after` of the enclosing describe (or file). */
export function useTarget(options?: TargetOptions): () => Target {
  let target: Target | undefined;
  before(async () => {
    target = await startTarget(options);
  });
  after(async () => {
    await target?.stop();
  });
  return () => {
    if (!target) throw new Error('target server not started');
    return target;
  };
}

/**
 * Test options. `deviations` maps a target name to the reason it is known not to conform; when
 * running against that target the case is still run but reported as todo.
 */
export function opts(
  timeout = TEST_MS,
  deviations: Record<string, string> = {},
): { timeout: number; todo?: string } {
  const reason = deviations[targetName()];
  return reason ? { timeout, todo: `known ${targetName()} deviation: ${reason}` } : { timeout };
}

export const b = (...parts: (Bytes | number[])[]): Buffer =>
  Buffer.concat(parts.map((p) => (Array.isArray(p) ? Buffer.from(p) : toBuffer(p))));

export const fromHex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

/** Deterministic pseudo-random bytes (fast, so that multi-megabyte payloads cost little). */
export function pseudoRandomBytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Valid UTF-8 text of exactly `n` bytes mixing 1-, 2-, 3- and 4-byte characters, so that
 * fragment and chunk boundaries fall inside multibyte characters.
 */
export function utf8Text(n: number): Buffer {
  const unit = Buffer.from('Hello-µ@ßöäüàá-UTF-8!! κόσμε ☃ € 𝄞 😀 ', 'utf8');
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  while (off + unit.length <= n) off += unit.copy(out, off);
  out.fill(0x61, off); // pad with ASCII
  return out;
}
