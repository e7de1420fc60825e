import { createInterface, type Interface } from 'node:readline';
import type { Readable } from 'node:stream';

/** One thing read from stdin for the connection: a line of text, or a piece of binary input. */
export type InputItem =
  | { kind: 'line'; text: string }
  | { kind: 'bytes'; bytes: Buffer; last: boolean };

/**
 * Reads stdin into a queue from the start, so that what is piped in before the connection is
 * open is sent once it is, in order. The queue is bounded: past `maxQueued` items (lines or
 * chunks) stdin is paused until the sender has taken some.
 */
export class InputQueue {
  private readonly items: InputItem[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  private paused = false;
  /** The readline interface in line mode (also what prints the prompt on a terminal). */
  readonly lines: Interface | null;

  constructor(
    private readonly input: Readable,
    mode: 'lines' | 'binary',
    terminal: { output: NodeJS.WritableStream; prompt: string } | null,
    private readonly maxQueued = 1024,
  ) {
    if (mode === 'lines') {
      this.lines = createInterface({
        input,
        crlfDelay: Infinity,
        ...(terminal ? { output: terminal.output, prompt: terminal.prompt, terminal: true } : { terminal: false }),
      });
      this.lines.on('line', (text) => this.push({ kind: 'line', text }));
      this.lines.on('close', () => this.end());
    } else {
      this.lines = null;
      // Binary input is one message: each chunk is held until the next arrives, so the last
      // one can be marked as the end of the message (and a short input is a single frame).
      let held: Buffer | null = null;
      input.on('data', (chunk: Buffer) => {
        if (held !== null) this.push({ kind: 'bytes', bytes: held, last: false });
        held = chunk;
      });
      input.on('end', () => {
        if (held !== null) this.push({ kind: 'bytes', bytes: held, last: true });
        this.end();
      });
      input.on('error', () => this.end());
    }
  }

  private push(item: InputItem): void {
    this.items.push(item);
    if (!this.paused && this.items.length >= this.maxQueued) {
      this.paused = true;
      if (this.lines) this.lines.pause();
      else this.input.pause();
    }
    this.notify();
  }

  private end(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** The next item, or `null` once stdin has ended and everything was taken. */
  async next(): Promise<InputItem | null> {
    while (this.items.length === 0) {
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const item = this.items.shift()!;
    if (this.paused && this.items.length <= this.maxQueued / 2) {
      this.paused = false;
      if (this.lines) this.lines.resume();
      else this.input.resume();
    }
    return item;
  }

  /** Stop reading stdin (the connection is over). */
  stop(): void {
    this.lines?.close();
    this.input.pause();
    this.end();
  }
}
