// The guide quotes only code that runs: every ```ts and ```js block in docs/guide/ is a
// verbatim excerpt of a file under examples/ (each of which a test in test/examples/ runs).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUIDE = join(ROOT, 'docs/guide');

function files(dir: string, keep: (name: string) => boolean): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, keep);
    return keep(name) ? [path] : [];
  });
}

const examples = files(join(ROOT, 'examples'), (name) => /\.(ts|mts|cts|js|mjs|cjs)$/.test(name)).map((path) => ({
  path,
  text: readFileSync(path, 'utf8'),
}));
const chapters = files(GUIDE, (name) => name.endsWith('.md'));

describe('docs/guide', () => {
  it('has the chapters the README lists', () => {
    const index = readFileSync(join(GUIDE, 'README.md'), 'utf8');
    const listed = [...index.matchAll(/\]\((\d\d-[a-z-]+\.md)\)/g)].map((match) => match[1]!);
    assert.ok(listed.length >= 13);
    for (const name of listed) assert.ok(existsSync(join(GUIDE, name)), `${name} exists`);
  });

  for (const chapter of chapters) {
    const name = chapter.slice(GUIDE.length + 1);
    it(`${name}: every code block is an excerpt of an example; links to examples resolve`, () => {
      const markdown = readFileSync(chapter, 'utf8');
      const blocks = [...markdown.matchAll(/^```(ts|js)\n([^]*?)^```$/gm)].map((match) => match[2]!);
      for (const block of blocks) {
        const found = examples.find((example) => example.text.includes(block));
        assert.ok(found, `${name}: this block is in no file under examples/:\n${block}`);
      }
      for (const [, target] of markdown.matchAll(/\]\((\.\.\/\.\.\/examples\/[^)#]+)\)/g)) {
        assert.ok(existsSync(resolve(dirname(chapter), target!)), `${name}: ${target} exists`);
      }
    });
  }
});
