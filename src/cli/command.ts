import { HELP_FLAG, formatFlags, parseFlags, type Flag, type ParsedArgs } from './flags.js';

/** One `humphrey-ws` command: its help, its flag table and what it does. */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments as shown in the usage line, e.g. `URL`; and how many are required. */
  positionals?: { usage: string; required: number; max: number };
  /** More help printed under the flags (behaviour, output, exit status). */
  details?: string;
  flags: readonly Flag[];
  /**
   * Run the command. Resolves with the exit status once it is done (a server resolves only
   * when it stops); throws a `UsageError` for a mistake on the command line.
   */
  run(args: ParsedArgs): Promise<number>;
}

/** The full help of one command. */
export function commandHelp(command: Command): string {
  const positional = command.positionals ? ` ${command.positionals.usage}` : '';
  const parts = [
    `usage: humphrey-ws ${command.name}${positional} [options]`,
    '',
    command.summary,
    '',
    'options:',
    formatFlags([...command.flags, HELP_FLAG]),
  ];
  if (command.details) parts.push('', command.details.trimEnd());
  return `${parts.join('\n')}\n`;
}

/** Parse a command's arguments with its table (plus `--help`). */
export function parseCommandArgs(command: Command, args: string[]): ParsedArgs {
  return parseFlags(args, [...command.flags, HELP_FLAG], command.positionals?.max ?? 0);
}
