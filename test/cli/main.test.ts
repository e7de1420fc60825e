import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { runCli } from './run.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const COMMANDS = ['demo', 'echo', 'broadcast', 'connect'];

describe('humphrey-ws (the command itself)', () => {
  it('--version and -V print the package version', () => {
    for (const flag of ['--version', '-V']) {
      const result = runCli([flag]);
      assert.equal(result.status, 0);
      assert.equal(result.stdout, `${version}\n`);
    }
  });

  it('--help lists every command on stdout and exits 0', () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const result = runCli(args);
      assert.equal(result.status, 0, args.join(' '));
      assert.match(result.stdout, /^usage: humphrey-ws COMMAND/);
      for (const command of COMMANDS) assert.match(result.stdout, new RegExp(`^  ${command} `, 'm'));
      assert.equal(result.stderr, '');
    }
  });

  it('a bare invocation prints the help to stderr and exits 2', () => {
    const result = runCli([]);
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^usage: humphrey-ws COMMAND/);
  });

  it('COMMAND --help (and help COMMAND) shows every flag of that command', () => {
    const expected: Record<string, string[]> = {
      demo: ['--host HOST', '--port PORT', '-h, --help'],
      echo: ['--host HOST', '--port PORT', '--cert FILE', '--key FILE', '--max-message-size BYTES', '--mode sync|async', '-h, --help'],
      broadcast: ['--host HOST', '--port PORT', '--cert FILE', '--key FILE', '--max-message-size BYTES', '--heartbeat MS', '--max-buffered-amount BYTES', '--backpressure drop|close'],
      connect: [
        'usage: humphrey-ws connect URL', '-H, --header NAME:VALUE', '-s, --protocol PROTOCOL', '-o, --origin ORIGIN', '--auth USER:PASSWORD',
        '--ca FILE', '-k, --insecure', '-b, --binary', '-x, --execute MESSAGE', '-w, --wait SECONDS', '--ping-interval MS', '--show-ping',
        '--max-message-size BYTES', '-q, --quiet', '/ping', '/close [CODE] [REASON]', 'Exit status',
      ],
    };
    for (const command of COMMANDS) {
      for (const args of [[command, '--help'], [command, '-h'], ['help', command]]) {
        const result = runCli(args);
        assert.equal(result.status, 0, args.join(' '));
        assert.match(result.stdout, new RegExp(`^usage: humphrey-ws ${command}`));
        for (const flag of expected[command]!) assert.ok(result.stdout.includes(flag), `${args.join(' ')} shows ${flag}`);
      }
    }
  });

  it('an unknown flag or command is named, with a hint, and exits 2', () => {
    const cases: [string[], RegExp][] = [
      [['echo', '--nope', '1'], /unknown option --nope/],
      [['broadcast', '-z'], /unknown option -z/],
      [['--frobnicate'], /unknown option --frobnicate/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['help', 'frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const result = runCli(args);
      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, message);
      assert.match(result.stderr, /see humphrey-ws( \w+)? --help/);
      assert.equal(result.stdout, '');
    }
  });

  it('bad values are refused with what was expected, and exit 2', () => {
    const cases: [string[], RegExp][] = [
      [['echo', '--port', 'abc'], /--port must be a whole number from 0 to 65535, got "abc"/],
      [['echo', '--port', '70000'], /--port must be a whole number/],
      [['echo', '--port'], /option --port needs a value/],
      [['echo', '--mode', 'threads'], /--mode must be sync or async, got "threads"/],
      [['echo', '--cert', 'x.pem'], /--cert and --key go together/],
      [['echo', 'extra'], /unexpected argument "extra"/],
      [['broadcast', '--backpressure', 'maybe'], /--backpressure must be drop or close/],
      [['broadcast', '--help=yes'], /option --help takes no value/],
    ];
    for (const [args, message] of cases) {
      const result = runCli(args);
      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
    }
  });
});
