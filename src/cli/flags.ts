import { parseArgs } from 'node:util';

/**
 * One command-line flag. Each command lists its flags in a table of these; parsing, validation
 * and the help text all come from that table, so a new flag is one entry.
 */
export interface Flag<Value = unknown> {
  /** The long name, without `--`. */
  name: string;
  /** A one-letter alias, without `-`. */
  short?: string;
  /** The placeholder shown in help (`PORT`, `FILE`); absent for a switch that takes no value. */
  value?: string;
  /** May be given more than once; the values are collected in order. */
  repeatable?: boolean;
  /** Converts and checks the text given; throws a `UsageError` to refuse it. */
  parse?: (text: string, flag: string) => Value;
  /** The default, as shown in help (the command applies it). */
  defaultText?: string;
  /** One line (or a few) of help. */
  help: string;
}

/** A mistake on the command line: the command prints it with a hint and exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** What a command was given: flag values by long name, and the positional arguments. */
export interface ParsedArgs {
  values: Map<string, unknown>;
  positionals: string[];
}

/** The help flag every command has. */
export const HELP_FLAG: Flag = { name: 'help', short: 'h', help: 'show this help' };

/**
 * Parse `args` against `flags`: `--name value`, `--name=value`, `-n value`, switches, `--` to
 * end the flags. Unknown flags, missing values and values a flag's `parse` refuses throw a
 * `UsageError`. A switch is `true` when given; a repeatable flag is an array.
 */
export function parseFlags(args: string[], flags: readonly Flag[], maxPositionals: number): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const flag of flags) {
    options[flag.name] = {
      type: flag.value === undefined ? 'boolean' : 'string',
      ...(flag.short !== undefined ? { short: flag.short } : {}),
      ...(flag.repeatable ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(describeParseError(error as Error & { code?: string }));
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals]!;
    throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
  }
  const values = new Map<string, unknown>();
  for (const flag of flags) {
    const given = (parsed.values as Record<string, unknown>)[flag.name];
    if (given === undefined) continue;
    if (flag.value === undefined || flag.parse === undefined) {
      values.set(flag.name, given);
      continue;
    }
    const parse = flag.parse;
    const shown = `--${flag.name}`;
    values.set(flag.name, Array.isArray(given) ? given.map((text: string) => parse(text, shown)) : parse(given as string, shown));
  }
  return { values, positionals: parsed.positionals };
}

/** node:util's messages, reworded to name the flag the way our help does. */
function describeParseError(error: Error & { code?: string }): string {
  const option = /'(?:-\w, )?(--?[^' ]+)/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option ?? error.message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(error.message)) return `option ${option} needs a value`;
      if (/does not take an argument/.test(error.message)) return `option ${option} takes no value`;
      if (/ambiguous/.test(error.message)) return `option ${option} needs a value (write ${option}=VALUE for a value that starts with -)`;
      return error.message;
    default:
      return error.message;
  }
}

/** A flag's help lines, aligned in two columns. */
export function formatFlags(flags: readonly Flag[]): string {
  const rows = flags.map((flag) => {
    const names = `${flag.short !== undefined ? `-${flag.short}, ` : '    '}--${flag.name}${flag.value !== undefined ? ` ${flag.value}` : ''}`;
    const help = flag.help + (flag.defaultText !== undefined ? ` (default ${flag.defaultText})` : '') + (flag.repeatable ? ' (repeatable)' : '');
    return { names, help };
  });
  const width = Math.min(34, Math.max(...rows.map((row) => row.names.length)) + 2);
  return rows
    .map(({ names, help }) => {
      const lines = help.split('\n');
      const first = names.length + 2 > width ? `  ${names}\n  ${' '.repeat(width)}${lines[0]}` : `  ${names.padEnd(width)}${lines[0]}`;
      return [first, ...lines.slice(1).map((line) => `  ${' '.repeat(width)}${line}`)].join('\n');
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Value parsers shared by the commands' flag tables.

/** A whole number from `min` to `max`. */
export function integer(min = 0, max = Number.MAX_SAFE_INTEGER): (text: string, flag: string) => number {
  return (text, flag) => {
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
    }
    return value;
  };
}

/** A non-negative number (fractions allowed), e.g. seconds. */
export function nonNegativeNumber(text: string, flag: string): number {
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value)) throw new UsageError(`${flag} must be a non-negative number, got ${JSON.stringify(text)}`);
  return value;
}

/** One of a fixed set of words. */
export function oneOf<const Choices extends readonly string[]>(...choices: Choices): (text: string, flag: string) => Choices[number] {
  return (text, flag) => {
    if (!choices.includes(text)) throw new UsageError(`${flag} must be ${choices.join(' or ')}, got ${JSON.stringify(text)}`);
    return text as Choices[number];
  };
}

export const PORT = integer(0, 65535);
