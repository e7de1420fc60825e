import { WebSocketError } from '../protocol/errors.js';

export interface BusOptions {
  /**
   * Values a slow reader may have waiting before the oldest is dropped (and counted in its
   * `lagged`). Default 1024.
   */
  capacity?: number;
}

/**
 * A broadcast channel for per-connection handlers: every value sent reaches every reader
 * subscribed at that moment. A handler awaits its reader alongside its stream (two loops, or
 * `Promise.race([stream.recv(), reader.recv()])`), so broadcasting needs no polling.
 */
export class Bus<T> {
  private readonly readers = new Set<BusReader<T>>();
  private readonly capacity: number;

  constructor(options: BusOptions = {}) {
    this.capacity = options.capacity ?? 1024;
  }

  /** A new reader that receives every value sent from now on. Close it when done. */
  subscribe(): BusReader<T> {
    const reader = new BusReader<T>(this.capacity, () => this.readers.delete(reader));
    this.readers.add(reader);
    return reader;
  }

  /** Send `value` to every reader; returns how many readers it was queued for. */
  send(value: T): number {
    for (const reader of this.readers) reader.push(value);
    return this.readers.size;
  }

  /** The number of open readers. */
  get readerCount(): number {
    return this.readers.size;
  }

  /** Close every reader: their pending and later `recv` calls reject, iteration ends. */
  close(): void {
    for (const reader of [...this.readers]) reader.close();
  }
}

/** One subscriber's view of a `Bus`. */
export class BusReader<T> implements AsyncIterable<T> {
  /** Values dropped because this reader fell more than `capacity` values behind. */
  lagged = 0;
  private readonly values: T[] = [];
  private waiter: { resolve: (value: T) => void; reject: (error: Error) => void; promise: Promise<T> } | null = null;
  private closed = false;

  /** @internal */
  constructor(
    private readonly capacity: number,
    private readonly onClose: () => void,
  ) {}

  /** @internal */
  push(value: T): void {
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter.resolve(value);
      return;
    }
    this.values.push(value);
    if (this.values.length > this.capacity) {
      this.values.shift();
      this.lagged++;
    }
  }

  /** The next value; the same promise while one call is waiting. Rejects once closed. */
  recv(): Promise<T> {
    if (this.values.length > 0) return Promise.resolve(this.values.shift()!);
    if (this.closed) return Promise.reject(new WebSocketError('WS_ERR_CLOSED', 'bus reader is closed'));
    if (this.waiter !== null) return this.waiter.promise;
    let resolve!: (value: T) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<T>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    this.waiter = { resolve, reject, promise };
    return promise;
  }

  /** A value if one is waiting, else `undefined`. */
  tryRecv(): T | undefined {
    return this.values.shift();
  }

  /** Stop receiving; values still queued are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.values.length = 0;
    this.onClose();
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter.reject(new WebSocketError('WS_ERR_CLOSED', 'bus reader is closed'));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.values.length === 0 && this.closed) return;
      try {
        yield await this.recv();
      } catch (error) {
        if (this.closed) return;
        throw error;
      }
    }
  }
}
