// A short test report for `npm test`: one line per test file (at the end), the details of each failure,
// and a closing line "N passed, M failed". (`npm run test:tap` or HUMPHREY_TEST_REPORTER=tap
// gives node's TAP output instead.) Used as a node:test custom reporter.
import { relative } from 'node:path';
import { inspect } from 'node:util';

const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code, text) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
const red = (text) => paint(31, text);
const green = (text) => paint(32, text);
const dim = (text) => paint(2, text);

/** A file's own test event (node runs each file as a top-level test named by its path). */
const isFile = (data) => data.nesting === 0 && data.file !== undefined && data.name === data.file;
const isSuite = (data) => data.details?.type === 'suite';

function describeError(error) {
  // node wraps what a test threw; show the cause with its message, diff and stack.
  const cause = error?.cause ?? error;
  const text = typeof cause === 'string' ? cause : cause instanceof Error ? cause.stack ?? cause.message : inspect(cause, { depth: 4 });
  const extra = cause && typeof cause === 'object' && 'actual' in cause && cause.generatedMessage === false
    ? `\n  actual:   ${inspect(cause.actual, { depth: 3 })}\n  expected: ${inspect(cause.expected, { depth: 3 })}`
    : '';
  return (text + extra).split('\n').slice(0, 30).map((line) => `    ${line}`).join('\n');
}

export default async function* report(source) {
  let passed = 0;
  let failed = 0;
  const perFile = new Map(); // file -> { passed, failed }
  const failures = [];
  const stderr = new Map(); // file -> what it printed on stderr
  const names = []; // the enclosing suites' names, by nesting level
  const counts = (file) => {
    if (!perFile.has(file)) perFile.set(file, { passed: 0, failed: 0, ms: 0 });
    return perFile.get(file);
  };

  for await (const { type, data } of source) {
    if (type === 'test:start') {
      names[data.nesting] = data.name;
      continue;
    }
    if (type === 'test:stderr' && data.file) {
      // Kept (bounded) to explain a file that fails as a whole.
      const kept = stderr.get(data.file) ?? '';
      if (kept.length < 8192) stderr.set(data.file, kept + data.message);
      continue;
    }
    if (type !== 'test:pass' && type !== 'test:fail') continue;
    const file = data.file ? relative(process.cwd(), data.file) : '(unknown file)';
    if (data.nesting === 0) counts(file).ms += data.details?.duration_ms ?? 0;
    if (isFile(data)) {
      // A file that failed as a whole (it did not load, or timed out) counts as one failure.
      if (type === 'test:fail' && counts(file).failed === 0) {
        failed++;
        counts(file).failed++;
        const printed = stderr.get(data.file);
        failures.push({ title: file, error: printed ? `${data.details.error?.message ?? 'failed'}; its stderr:\n${printed.trimEnd()}` : data.details.error });
      }
      continue;
    }
    if (isSuite(data)) {
      if (type === 'test:fail' && data.details.error?.failureType !== 'subtestsFailed') {
        failed++;
        counts(file).failed++;
        failures.push({ title: `${file} › ${names.slice(1, data.nesting + 1).join(' › ')}`, error: data.details.error });
      }
      continue;
    }
    if (type === 'test:pass') {
      if (data.skip || data.todo) continue;
      passed++;
      counts(file).passed++;
    } else {
      failed++;
      counts(file).failed++;
      failures.push({ title: `${file} › ${names.slice(1, data.nesting).concat(data.name).join(' › ')}`, error: data.details.error });
    }
  }

  for (const [file, { passed: p, failed: f, ms }] of [...perFile].sort(([a], [b]) => a.localeCompare(b))) {
    yield `${f > 0 ? red('✖') : green('✔')} ${file} ${dim(`${p} passed${f > 0 ? `, ${f} failed` : ''}, ${(ms / 1000).toFixed(1)} s`)}\n`;
  }
  for (const { title, error } of failures) yield `\n${red('✖')} ${title}\n${describeError(error)}\n`;
  yield `\n${passed} passed, ${failed} failed\n`;
}
