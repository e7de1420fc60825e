import { readFileSync } from 'node:fs';
import { commandHelp, parseCommandArgs, type Command } from './command.js';
import { UsageError } from './flags.js';
import { echo } from './echo.js';
import { broadcast } from './broadcast.js';
import { connectCommand } from './connect.js';
import { demo } from './demo.js';

/** Every command, in the order the help lists them. */
const COMMANDS: readonly Command[] = [demo, echo, broadcast, connectCommand];

function version(): string {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return packageJson.version;
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length)) + 2;
  return `usage: humphrey-ws COMMAND [options]

commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}${command.summary}`).join('\n')}

options:
  -h, --help     show this help ("humphrey-ws COMMAND --help" for a command's options)
  -V, --version  print the version
`;
}

/** Where the command's output goes; the tests and `bin/` use process streams. */
export interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * Run `humphrey-ws` with `args` (without the node and script paths) and resolve with the exit
 * status: 0 on success, 1 when the command failed, 2 for a mistake on the command line.
 */
export async function main(args: string[], output: Output = processOutput): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined) {
    output.err(overview());
    return 2;
  }
  if (first === '--help' || first === '-h') {
    output.out(overview());
    return 0;
  }
  if (first === '--version' || first === '-V') {
    output.out(`${version()}\n`);
    return 0;
  }
  if (first === 'help') {
    const topic = rest[0] === undefined ? undefined : COMMANDS.find((command) => command.name === rest[0]);
    if (rest[0] !== undefined && topic === undefined) return usageError(output, `unknown command ${JSON.stringify(rest[0])}`);
    output.out(topic ? commandHelp(topic) : overview());
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === first);
  if (command === undefined) {
    return usageError(output, first.startsWith('-') ? `unknown option ${first}` : `unknown command ${JSON.stringify(first)}`);
  }
  try {
    const parsed = parseCommandArgs(command, rest);
    if (parsed.values.get('help') === true) {
      output.out(commandHelp(command));
      return 0;
    }
    const required = command.positionals?.required ?? 0;
    if (parsed.positionals.length < required) throw new UsageError(`missing ${command.positionals!.usage}`);
    return await command.run(parsed);
  } catch (error) {
    if (error instanceof UsageError) return usageError(output, error.message, command);
    throw error;
  }
}

function usageError(output: Output, message: string, command?: Command): number {
  const hint = command ? `humphrey-ws ${command.name} --help` : 'humphrey-ws --help';
  output.err(`humphrey-ws: ${message}\n(see ${hint})\n`);
  return 2;
}
