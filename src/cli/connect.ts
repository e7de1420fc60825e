import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type ConnectOptions, type Message, type WebSocketStream } from '../index.js';
import type { Command } from './command.js';
import { integer, nonNegativeNumber, UsageError, type Flag, type ParsedArgs } from './flags.js';
import { InputQueue } from './input.js';
import { DEFAULT_MAX_MESSAGE_SIZE, maxMessageSizeFlag } from './serve.js';

/** Without --wait, how long -x waits for its replies before giving up. */
const EXECUTE_REPLY_TIMEOUT_MS = 10_000;
const PROMPT = '> ';
/** How long the socket may take to flush and close after the WebSocket is closed. */
const SOCKET_FINISH_MS = 2000;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function headerFlag(text: string, flag: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon === -1 ? '' : text.slice(0, colon).trim();
  if (!TOKEN.test(name)) throw new UsageError(`${flag} takes NAME:VALUE, got ${JSON.stringify(text)}`);
  return [name, text.slice(colon + 1).trim()];
}

function credentialsFlag(text: string, flag: string): string {
  if (!text.includes(':')) throw new UsageError(`${flag} takes USER:PASSWORD, got ${JSON.stringify(text)}`);
  return text;
}

const flags: Flag[] = [
  { name: 'header', short: 'H', value: 'NAME:VALUE', repeatable: true, parse: headerFlag, help: 'add a request header' },
  { name: 'protocol', short: 's', value: 'PROTOCOL', repeatable: true, help: 'offer a subprotocol (in order of preference)' },
  { name: 'origin', short: 'o', value: 'ORIGIN', help: 'send this Origin header' },
  { name: 'auth', value: 'USER:PASSWORD', parse: credentialsFlag, help: 'HTTP basic authentication (also taken from the URL)' },
  { name: 'ca', value: 'FILE', help: 'trust this PEM certificate authority for wss://' },
  { name: 'insecure', short: 'k', help: "don't verify the server's certificate (wss://)" },
  {
    name: 'binary',
    short: 'b',
    help: 'binary mode: stdin, up to its end, is sent as one binary message,\nand every message received is written to stdout raw, with nothing between',
  },
  { name: 'execute', short: 'x', value: 'MESSAGE', repeatable: true, help: 'send MESSAGE once connected (stdin is not read), print the replies, exit' },
  {
    name: 'wait',
    short: 'w',
    value: 'SECONDS',
    parse: nonNegativeNumber,
    help: 'after the last message is sent (stdin ended, or -x), keep printing what\narrives for SECONDS, then close',
  },
  { name: 'ping-interval', value: 'MS', parse: integer(1), help: 'send a ping every MS ms' },
  { name: 'show-ping', help: 'report each ping (and its round-trip time where the library gives one)' },
  maxMessageSizeFlag,
  { name: 'quiet', short: 'q', help: "don't print 'connected' and 'closed' lines (errors still are)" },
];

export const connectCommand: Command = {
  name: 'connect',
  summary: 'A client: send stdin (or -x messages) to a WebSocket server, print what arrives.',
  positionals: { usage: 'URL', required: 1, max: 1 },
  flags,
  details: `URL is ws://, wss://, http:// or https://, e.g. ws://127.0.0.1:9001/path?query.

Each line of stdin is sent as a text message; what is piped in before the connection is open
is sent once it is. Each message received is printed on stdout followed by a newline: text as
it is, binary as lowercase hex. With -b, stdin is one binary message and output is raw bytes.
Status lines ("connected", "closed CODE REASON", pings) and errors go to stderr.

When stdin ends, the client closes with 1000 (after --wait SECONDS, if given) and prints what
arrives until the server answers the close. With -x, it waits for one reply per -x message
(at most ${EXECUTE_REPLY_TIMEOUT_MS / 1000} s), or for --wait SECONDS, then closes.

On a terminal, lines starting with / are commands:
  /ping [PAYLOAD]         send a ping
  /close [CODE] [REASON]  close the connection (default 1000)
  /help                   list the commands
  //text                  send "/text"

Exit status: 0 after a clean close with code 1000 or none (or one this client asked for),
1 when the connection failed (refused handshake, connection lost, another close code, no reply
to -x in time), 2 for a mistake on the command line.`,
  async run({ values, positionals }) {
    const options = connectOptions(values);
    const target = normalizeUrl(positionals[0]!, options);
    const session = new Session(values, options);
    return session.run(target);
  },
};

/** The URL as `connect` takes it, with user:password moved to an Authorization header. */
function normalizeUrl(text: string, options: ConnectOptions): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${JSON.stringify(text)} is not a URL (e.g. ws://127.0.0.1:9001)`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(url.protocol)) throw new UsageError(`URL must start with ws://, wss://, http:// or https://, got ${JSON.stringify(text)}`);
  if (url.username !== '' || url.password !== '') {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    options.headers!['Authorization'] ??= basic(credentials);
    url.username = '';
    url.password = '';
  }
  return url.href;
}

function basic(credentials: string): string {
  return `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
}

function connectOptions(values: ParsedArgs['values']): ConnectOptions & { headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  for (const [name, value] of (values.get('header') as [string, string][] | undefined) ?? []) {
    const existing = Object.keys(headers).find((key) => key.toLowerCase() === name.toLowerCase());
    if (existing !== undefined) headers[existing] += `, ${value}`;
    else headers[name] = value;
  }
  const origin = values.get('origin') as string | undefined;
  if (origin !== undefined) headers['Origin'] = origin;
  const auth = values.get('auth') as string | undefined;
  if (auth !== undefined) headers['Authorization'] = basic(auth);
  const tls: NonNullable<ConnectOptions['tls']> = {};
  const ca = values.get('ca') as string | undefined;
  if (ca !== undefined) {
    try {
      tls.ca = readFileSync(ca);
    } catch (error) {
      throw new UsageError(`cannot read --ca ${ca}: ${(error as Error).message}`);
    }
  }
  if (values.get('insecure') === true) tls.rejectUnauthorized = false;
  return {
    headers,
    protocols: (values.get('protocol') as string[] | undefined) ?? [],
    tls,
    maxMessageSize: (values.get('max-message-size') as number | undefined) ?? DEFAULT_MAX_MESSAGE_SIZE,
  };
}

/** One run of `connect`: the connection, stdin, stdout and the exit status. */
class Session {
  private readonly binary: boolean;
  private readonly quiet: boolean;
  private readonly execute: string[] | undefined;
  private readonly waitMs: number | undefined;
  /** On a terminal (and not in binary mode): a prompt, `< ` before messages, slash commands. */
  private readonly interactive: boolean;
  private readonly input: InputQueue | null;
  private stream: WebSocketStream | null = null;
  /** This client started the close (stdin ended, /close, -x done): its code is no failure. */
  private closing = false;
  private received = 0;
  /** The connection is over: no more prompts. */
  private finished = false;
  private onReceived: (() => void) | null = null;

  constructor(
    private readonly values: ParsedArgs['values'],
    private readonly options: ConnectOptions,
  ) {
    this.binary = values.get('binary') === true;
    this.quiet = values.get('quiet') === true;
    this.execute = values.get('execute') as string[] | undefined;
    this.waitMs = values.has('wait') ? (values.get('wait') as number) * 1000 : undefined;
    this.interactive = this.execute === undefined && !this.binary && process.stdin.isTTY === true && process.stdout.isTTY === true;
    // stdin is read from the start, before the connection is open, so nothing piped is lost.
    this.input = this.execute !== undefined
      ? null
      : new InputQueue(process.stdin, this.binary ? 'binary' : 'lines', this.interactive ? { output: process.stdout, prompt: PROMPT } : null);
  }

  async run(url: string): Promise<number> {
    // Ctrl-C closes the connection properly (readline takes it on a terminal); a second one quits.
    const interrupt = (): void => {
      process.once('SIGINT', () => process.exit(130));
      this.input?.stop();
      if (this.stream?.readyState === 'open') {
        this.closing = true;
        void this.stream.close(1000).catch(() => undefined);
      }
    };
    process.once('SIGINT', interrupt);
    this.input?.lines?.once('SIGINT', interrupt);
    let stream: WebSocketStream;
    try {
      stream = await connect(url, this.options);
    } catch (error) {
      this.input?.stop();
      this.error(`cannot connect to ${url}: ${(error as Error).message}`);
      return 1;
    }
    this.stream = stream;
    this.status(`connected to ${url}${stream.protocol !== undefined ? ` (protocol ${stream.protocol})` : ''}`);
    if (this.interactive) this.input!.lines!.prompt();
    // Once the connection is over, stdin has nothing left to feed.
    void stream.closed.then(() => this.input?.stop());
    const pinger = this.startPings(stream);
    const receiving = this.receive(stream);
    let failure: string | null = null;
    try {
      if (this.execute !== undefined) failure = await this.runExecute(stream, this.execute);
      else await this.sendInput(stream, this.input!);
    } catch {
      // A send failed: the connection is over, and `closed` says how.
    }
    if (stream.readyState === 'open') {
      this.closing = true;
      await stream.close(1000).catch(() => undefined);
    }
    const info = await stream.closed;
    await receiving;
    // After a failure our close frame may still be on its way: let the socket finish (bounded)
    // before the process exits.
    if (!stream.inner.destroyed) await this.idle(once(stream.inner, 'close'), SOCKET_FINISH_MS);
    clearInterval(pinger);
    this.finished = true;
    this.input?.stop();
    const reason = info.reason ? ` ${info.reason}` : '';
    if (info.error && !info.wasClean) this.error(`connection lost (${info.code}): ${info.error.message}`);
    else this.status(`closed ${info.code}${reason}`);
    if (failure !== null) {
      this.error(failure);
      return 1;
    }
    const normal = info.code === 1000 || info.code === 1005;
    return info.wasClean && (normal || this.closing) ? 0 : 1;
  }

  /** Send the -x messages, then wait for the replies (or --wait); a reason on failure. */
  private async runExecute(stream: WebSocketStream, messages: string[]): Promise<string | null> {
    for (const text of messages) await stream.send(this.binary ? Buffer.from(text, 'utf8') : text);
    if (this.waitMs !== undefined) {
      await this.idle(stream.closed, this.waitMs);
      return null;
    }
    const replied = await this.receivedAtLeast(stream, messages.length, EXECUTE_REPLY_TIMEOUT_MS);
    if (replied || stream.readyState !== 'open') return null;
    return `no reply within ${EXECUTE_REPLY_TIMEOUT_MS / 1000} s (got ${this.received} of ${messages.length})`;
  }

  /** Send what stdin gives until it ends, then wait --wait seconds if given. */
  private async sendInput(stream: WebSocketStream, input: InputQueue): Promise<void> {
    for (let item = await input.next(); item !== null; item = await input.next()) {
      if (stream.readyState !== 'open') return;
      if (item.kind === 'bytes') {
        await stream.sendFragment(item.bytes, item.last, false);
      } else if (this.interactive && item.text.startsWith('/') && !item.text.startsWith('//')) {
        if (await this.command(stream, item.text)) return;
      } else {
        await stream.send(this.interactive && item.text.startsWith('//') ? item.text.slice(1) : item.text);
      }
      if (this.interactive) input.lines!.prompt();
    }
    if (this.waitMs !== undefined) await this.idle(stream.closed, this.waitMs);
  }

  /** A slash command typed on the terminal; true when it closed the connection. */
  private async command(stream: WebSocketStream, line: string): Promise<boolean> {
    const [name, ...args] = line.slice(1).split(' ');
    switch (name) {
      case 'ping':
        await this.ping(stream, args.join(' '), true);
        return false;
      case 'close': {
        const code = args[0] === undefined || args[0] === '' ? 1000 : Number(args[0]);
        this.closing = true;
        try {
          await stream.close(code, args.slice(1).join(' '));
        } catch (error) {
          this.closing = false;
          this.print(`! ${(error as Error).message}\n`);
          return false;
        }
        return true;
      }
      case 'help':
        this.print('/ping [PAYLOAD]  /close [CODE] [REASON]  /help  (//text sends "/text")\n');
        return false;
      default:
        this.print(`! unknown command /${name} (try /help)\n`);
        return false;
    }
  }

  private startPings(stream: WebSocketStream): NodeJS.Timeout | undefined {
    const interval = this.values.get('ping-interval') as number | undefined;
    if (interval === undefined) return undefined;
    return setInterval(() => {
      if (stream.readyState === 'open') void this.ping(stream, '', this.values.get('show-ping') === true);
    }, interval);
  }

  private async ping(stream: WebSocketStream, payload: string, report: boolean): Promise<void> {
    try {
      // A library whose ping() resolves with the round-trip time gets it reported.
      const result: unknown = await stream.ping(payload);
      if (report) {
        this.status(typeof result === 'number' ? `pong after ${result.toFixed(2)} ms` : `ping sent${payload ? ` (${payload})` : ''}`);
      }
    } catch (error) {
      this.error(`ping failed: ${(error as Error).message}`);
    }
  }

  /** Print every message until the connection closes; waits for stdout when it is slow. */
  private async receive(stream: WebSocketStream): Promise<void> {
    try {
      for await (const message of stream) {
        this.received++;
        const wake = this.onReceived;
        this.onReceived = null;
        wake?.();
        if (!this.show(message)) await new Promise((resolve) => process.stdout.once('drain', resolve));
      }
    } catch {
      // The connection failed; `run` reports how from `closed`.
    }
  }

  /** Write one message to stdout; false when stdout wants us to wait. */
  private show(message: Message): boolean {
    if (this.binary) return process.stdout.write(message.bytes());
    const body = message.isText ? message.text() : message.bytes().toString('hex');
    if (!this.interactive) return process.stdout.write(`${body}\n`);
    this.print(`< ${message.isText ? '' : `(binary, ${message.byteLength} bytes) `}${body}\n`);
    return true;
  }

  /** Print a line on the terminal above the prompt, keeping what is being typed. */
  private print(text: string): void {
    if (!this.interactive) {
      process.stderr.write(text);
      return;
    }
    process.stdout.write(`\r\x1b[K${text}`);
    if (!this.finished) this.input!.lines!.prompt(true);
  }

  private status(text: string): void {
    if (this.quiet) return;
    if (this.interactive) this.print(`* ${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  private error(text: string): void {
    process.stderr.write(`humphrey-ws: ${text}\n`);
  }

  /** Wait `ms`, or less if `until` settles first. */
  private async idle(until: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([until, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** Resolves true once `count` messages have arrived, false after `ms` or a close. */
  private async receivedAtLeast(stream: WebSocketStream, count: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.received < count && stream.readyState === 'open') {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.onReceived = resolve)),
        stream.closed,
        new Promise((resolve) => (timer = setTimeout(resolve, left))),
      ]);
      clearTimeout(timer);
    }
    return this.received >= count;
  }
}
