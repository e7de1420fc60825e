// A strict reader of the Prometheus text exposition format (0.0.4) for the tests: it throws on
// anything a scraper could misread, and hands back every series' value by name and labels.
import { request } from 'node:http';

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** Values by the series' labels, written `{a="1",b="2"}` (`''` for none). */
  samples: Map<string, number>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Parse an exposition. Rules checked: every line ends with `\n` (the text too); `# HELP` then
 * `# TYPE` open each family, once, before its samples; samples belong to the family just
 * opened and carry its exact name; a counter's name ends in `_total`, a gauge's does not;
 * label names are valid, values quoted and escaped; no series twice; values are numbers.
 */
export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  let current: Family | null = null;
  let pendingHelp: { name: string; help: string } | null = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line.startsWith('# HELP ')) {
      const match = /^# HELP (\S+) (.+)$/.exec(line);
      if (match === null || !NAME.test(match[1]!)) throw new Error(`${where}: bad HELP`);
      if (families.has(match[1]!) || pendingHelp !== null) throw new Error(`${where}: HELP repeated or without TYPE`);
      pendingHelp = { name: match[1]!, help: match[2]! };
      return;
    }
    if (line.startsWith('# TYPE ')) {
      const match = /^# TYPE (\S+) (counter|gauge)$/.exec(line);
      if (match === null) throw new Error(`${where}: bad TYPE`);
      const name = match[1]!;
      if (pendingHelp?.name !== name) throw new Error(`${where}: TYPE without its HELP just before`);
      const type = match[2] as 'counter' | 'gauge';
      if (type === 'counter' && !name.endsWith('_total')) throw new Error(`${where}: a counter's name must end in _total`);
      if (type === 'gauge' && name.endsWith('_total')) throw new Error(`${where}: a gauge's name must not end in _total`);
      current = { name, help: pendingHelp.help, type, samples: new Map() };
      families.set(name, current);
      pendingHelp = null;
      return;
    }
    if (line.startsWith('#') || line === '') throw new Error(`${where}: unexpected comment or blank line`);
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`${where}: not a sample`);
    const [, name, labelText = '', valueText] = match;
    if (current === null || pendingHelp !== null || name !== current.name) throw new Error(`${where}: sample outside its family`);
    const labels = parseLabels(labelText, where);
    if (current.samples.has(labels)) throw new Error(`${where}: series repeated`);
    if (!/^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/.test(valueText!)) throw new Error(`${where}: bad value`);
    current.samples.set(labels, Number(valueText));
  });
  if (pendingHelp !== null) throw new Error('HELP without TYPE at the end');
  return families;
}

function parseLabels(text: string, where: string): string {
  if (text === '') return '';
  const inner = text.slice(1, -1);
  const pairs: string[] = [];
  const pattern = /([^=,]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/gy;
  let at = 0;
  while (at < inner.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(inner);
    if (match === null || !LABEL_NAME.test(match[1]!)) throw new Error(`${where}: bad labels`);
    pairs.push(`${match[1]}="${match[2]}"`);
    at = pattern.lastIndex;
  }
  if (pairs.length === 0) throw new Error(`${where}: empty label set written as {}`);
  return `{${pairs.join(',')}}`;
}

/** One series' value; throws if the family or the series is not there. */
export function valueOf(families: Map<string, Family>, name: string, labels = ''): number {
  const family = families.get(name);
  if (family === undefined) throw new Error(`no metric ${name}`);
  const value = family.samples.get(labels);
  if (value === undefined) throw new Error(`no series ${name}${labels}; has ${[...family.samples.keys()].join(' ')}`);
  return value;
}

/** Every series of a labelled family, as `{ labelValue: value }` for its one label. */
export function seriesOf(families: Map<string, Family>, name: string): Record<string, number> {
  const family = families.get(name);
  if (family === undefined) throw new Error(`no metric ${name}`);
  const result: Record<string, number> = {};
  for (const [labels, value] of family.samples) result[/="([^"]*)"/.exec(labels)![1]!] = value;
  return result;
}

/** GET `url` and resolve with the status, the content type and the body. */
export function scrape(url: string, method = 'GET'): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 5000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, contentType: response.headers['content-type'], body }));
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}
