import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { WebSocketError } from '../errors.js';
import { CloseCode } from '../frame.js';
import { Utf8Validator } from '../utf8.js';
import { limiterFor, type ZlibLimiter } from './limiter.js';
import type { DeflateAgreement } from './negotiate.js';

/**
 * The end of a sync flush: an empty stored block. A sender strips it from each message, a
 * receiver appends it again (RFC 7692 section 7.2.1 and 7.2.2).
 */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

const kJob = Symbol('zlib job');
const kWritten = Symbol('bytes given to zlib');
const kPoolKey = Symbol('zlib pool key');
const kEnded = Symbol('deflate stream ended');

/** A Node zlib stream used as a context: one job at a time, listeners installed once. */
type Engine = (DeflateRaw | InflateRaw) & {
  [kJob]: Job | null;
  /** Input bytes given to this engine so far (compared with `bytesWritten`, what it consumed). */
  [kWritten]: number;
  /** Where it goes back when released, or null for a context kept by one connection. */
  [kPoolKey]: string | null;
  /** zlib reached the end of the deflate stream (a block with BFINAL set). */
  [kEnded]: boolean;
};

// Contexts of connections without context takeover are reset and shared: at most about
// `concurrency` are in use at once, so that many are kept per kind.
const pools = new Map<string, Engine[]>();

function onEngineData(this: Engine, chunk: Buffer): void {
  const job = this[kJob];
  if (job !== null) job.codec.output(job, chunk);
}

function onEngineError(this: Engine, error: Error): void {
  const job = this[kJob];
  this[kJob] = null;
  if (job !== null) {
    job.codec.fail(job, new WebSocketError('WS_ERR_COMPRESSION', `invalid compressed data: ${error.message}`, CloseCode.InvalidPayload));
  }
}

// Node ends the readable side when zlib stops taking input at the end of a deflate stream.
function onEngineEnd(this: Engine): void {
  this[kEnded] = true;
}

function newEngine(inflate: boolean, windowBits: number, memLevel: number, level: number, poolKey: string | null): Engine {
  const engine = (inflate ? createInflateRaw({ windowBits }) : createDeflateRaw({ windowBits, memLevel, level })) as Engine;
  engine[kJob] = null;
  engine[kWritten] = 0;
  engine[kPoolKey] = poolKey;
  engine[kEnded] = false;
  engine.on('data', onEngineData);
  if (inflate) engine.on('end', onEngineEnd);
  engine.on('error', onEngineError);
  return engine;
}

function acquire(inflate: boolean, windowBits: number, memLevel: number, level: number, shared: boolean): Engine {
  if (!shared) return newEngine(inflate, windowBits, memLevel, level, null);
  const key = inflate ? `i${windowBits}` : `d${windowBits}:${memLevel}:${level}`;
  const pool = pools.get(key);
  return pool?.pop() ?? newEngine(inflate, windowBits, memLevel, level, key);
}

/** Give back a context at the end of a message: reset and pooled when shared, else kept. */
function releaseShared(engine: Engine, keep: number): void {
  const key = engine[kPoolKey]!;
  engine.reset();
  let pool = pools.get(key);
  if (pool === undefined) pools.set(key, (pool = []));
  if (pool.length < keep) pool.push(engine);
  else engine.destroy();
}

/** Contexts waiting in the shared pools (for tests and metrics). */
export function pooledContexts(): number {
  let total = 0;
  for (const pool of pools.values()) total += pool.length;
  return total;
}

type CompressDone = (error: WebSocketError | null, payload: Buffer | null) => void;
type DecompressDone = (error: WebSocketError | null, message: Buffer[] | null, length: number) => void;

/** One zlib operation of one connection: a message to compress or a frame to decompress. */
class Job {
  readonly codec: PerMessageDeflate;
  readonly inflate: boolean;
  readonly data: Buffer | readonly Buffer[];
  readonly fin: boolean;
  readonly done: CompressDone | DecompressDone;
  readonly isText: boolean;
  engine: Engine | null = null;
  /** Handed to the limiter (it runs once a slot is free). */
  scheduled = false;
  finished = false;
  /** Compression output (inflated output is collected per message by the codec). */
  chunks: Buffer[] = [];
  length = 0;
  readonly start: () => void;
  readonly flushed: () => void;

  constructor(
    codec: PerMessageDeflate,
    inflate: boolean,
    data: Buffer | readonly Buffer[],
    fin: boolean,
    done: CompressDone | DecompressDone,
    isText = false,
  ) {
    this.codec = codec;
    this.isText = isText;
    this.inflate = inflate;
    this.data = data;
    this.fin = fin;
    this.done = done;
    this.start = () => codec.run(this);
    this.flushed = () => codec.flushed(this);
  }
}

/**
 * permessage-deflate for one connection, after the handshake agreed on `agreement`: compress
 * what it sends, decompress what it receives, each direction in order. Contexts are created
 * on first use (an idle connection holds none); without context takeover they are reset and
 * pooled after every message, with it they are kept until `close`. Every zlib operation goes
 * through the process-wide limiter. Decompression stops as soon as a message inflates past
 * `maxMessageSize` (1009) or, for text, stops being valid UTF-8 (1007): a small message that
 * would inflate to gigabytes never holds more than the limit.
 */
export class PerMessageDeflate {
  readonly agreement: DeflateAgreement;
  private readonly maxMessageSize: number;
  private readonly limiter: ZlibLimiter;
  private deflater: Engine | null = null;
  private inflater: Engine | null = null;
  private sendQueue: Job[] | null = null;
  private receiveQueue: Job[] | null = null;
  private closed = false;
  // The message being decompressed, over its frames.
  private messageChunks: Buffer[] = [];
  private messageLength = 0;
  private receiving = false;
  private validator: Utf8Validator | null = null;
  private validating = false;

  constructor(agreement: DeflateAgreement, maxMessageSize: number) {
    this.agreement = agreement;
    this.maxMessageSize = maxMessageSize;
    this.limiter = limiterFor(agreement.concurrency);
  }

  /** Whether a message of `length` bytes is to be sent compressed. */
  shouldCompress(length: number): boolean {
    return this.agreement.sendWindowBits !== 0 && length >= this.agreement.threshold;
  }

  /**
   * Compress one whole message (`data` or its pieces in order). `done` is called once, in the
   * order of the calls, with the payload to send with RSV1 set (not called after `close`).
   */
  compress(data: Buffer | readonly Buffer[], done: CompressDone): void {
    this.enqueue(new Job(this, false, data, true, done));
  }

  /**
   * Decompress one frame of a compressed message; `fin` marks its last frame, `isText` (read
   * on the first frame) asks for UTF-8 validation as the bytes come out. `done` is called once
   * per frame, in order: with the whole message's bytes after the last frame, with `null`
   * after the others, or with the error that must fail the connection.
   */
  decompress(data: Buffer | readonly Buffer[], fin: boolean, isText: boolean, done: DecompressDone): void {
    this.enqueue(new Job(this, true, data, fin, done, isText));
  }

  /** Release the contexts; pending work is dropped and its callbacks are not called. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sendQueue = null;
    this.receiveQueue = null;
    this.messageChunks = [];
    // A context in the middle of a job is dropped when that job ends.
    if (this.deflater !== null && this.deflater[kJob] === null) this.deflater.destroy();
    if (this.inflater !== null && this.inflater[kJob] === null) this.inflater.destroy();
    this.deflater = null;
    this.inflater = null;
  }

  private enqueue(job: Job): void {
    if (this.closed) return;
    const queue = job.inflate ? (this.receiveQueue ??= []) : (this.sendQueue ??= []);
    queue.push(job);
    if (queue.length === 1) this.schedule(job);
  }

  private schedule(job: Job): void {
    job.scheduled = true;
    this.limiter.run(job.start);
  }

  /** @internal The limiter gave `job` a slot. */
  run(job: Job): void {
    if (this.closed) {
      this.limiter.release();
      return;
    }
    const agreement = this.agreement;
    let engine: Engine;
    if (job.inflate) {
      if (!this.receiving) {
        // The first frame of a message says whether it is text.
        this.receiving = true;
        this.validating = job.isText;
        if (job.isText) (this.validator ??= new Utf8Validator()).reset();
      }
      engine = this.inflater ??= acquire(true, agreement.receiveWindowBits, 0, 0, agreement.receiveNoContextTakeover);
    } else {
      engine = this.deflater ??= acquire(false, agreement.sendWindowBits, agreement.memLevel, agreement.level, agreement.sendNoContextTakeover);
    }
    job.engine = engine;
    engine[kJob] = job;
    const data = job.data;
    if (Buffer.isBuffer(data)) {
      engine[kWritten] += data.length;
      engine.write(data);
    } else {
      for (let i = 0; i < data.length; i++) {
        engine[kWritten] += data[i]!.length;
        engine.write(data[i]!);
      }
    }
    if (job.inflate && job.fin) {
      engine[kWritten] += TRAILER.length;
      engine.write(TRAILER);
    }
    engine.flush(constants.Z_SYNC_FLUSH, job.flushed);
  }

  /** @internal Output of `job`'s engine. */
  output(job: Job, chunk: Buffer): void {
    if (job.finished) return;
    if (!job.inflate) {
      job.chunks.push(chunk);
      job.length += chunk.length;
      return;
    }
    this.messageLength += chunk.length;
    if (this.messageLength > this.maxMessageSize) {
      this.fail(job, new WebSocketError('WS_ERR_MESSAGE_TOO_BIG', `message inflates past the limit of ${this.maxMessageSize} bytes`, CloseCode.MessageTooBig));
      return;
    }
    if (this.validating && !this.validator!.push(chunk)) {
      this.fail(job, new WebSocketError('WS_ERR_INVALID_UTF8', 'text message is not valid UTF-8', CloseCode.InvalidPayload));
      return;
    }
    this.messageChunks.push(chunk);
  }

  /** @internal `job`'s flush completed: all its output has been seen. */
  flushed(job: Job): void {
    if (job.finished) return;
    const engine = job.engine!;
    engine[kJob] = null;
    if (this.closed) {
      job.finished = true;
      engine.destroy();
      this.limiter.release();
      return;
    }
    if (job.inflate) this.inflated(job, engine);
    else this.compressed(job, engine);
  }

  private compressed(job: Job, engine: Engine): void {
    const length = job.length;
    const output = job.chunks.length === 1 ? job.chunks[0]! : Buffer.concat(job.chunks, length);
    // A sync flush always ends with the empty stored block.
    if (length < 4 || output[length - 4] !== 0 || output[length - 3] !== 0 || output[length - 2] !== 0xff || output[length - 1] !== 0xff) {
      this.fail(job, new WebSocketError('WS_ERR_COMPRESSION', 'compressor output does not end with a sync flush', CloseCode.InternalError));
      return;
    }
    if (engine[kPoolKey] !== null) {
      this.deflater = null;
      releaseShared(engine, this.agreement.concurrency);
    }
    this.finish(job, this.sendQueue!);
    (job.done as CompressDone)(null, output.subarray(0, length - 4));
    this.next(this.sendQueue);
  }

  private inflated(job: Job, engine: Engine): void {
    // zlib stops at the end of a deflate stream (a block with BFINAL set, RFC 7692 section
    // 7.2.3.4): then only an empty stored block may follow (the trailer, possibly with the 0x00
    // that begins it), and the context cannot continue into the next message.
    const ended = engine[kEnded];
    if (ended && (!job.fin || engine[kWritten] - engine.bytesWritten > TRAILER.length + 1)) {
      this.fail(job, new WebSocketError('WS_ERR_COMPRESSION', 'data after the end of the compressed stream', CloseCode.InvalidPayload));
      return;
    }
    let message: Buffer[] | null = null;
    const length = this.messageLength;
    if (job.fin) {
      if (this.validating && !this.validator!.complete) {
        this.fail(job, new WebSocketError('WS_ERR_INVALID_UTF8', 'text message ends inside a UTF-8 sequence', CloseCode.InvalidPayload));
        return;
      }
      message = this.messageChunks;
      this.messageChunks = [];
      this.messageLength = 0;
      this.receiving = false;
      this.validating = false;
      if (ended) {
        this.inflater = null;
        engine.destroy();
      } else if (engine[kPoolKey] !== null) {
        this.inflater = null;
        releaseShared(engine, this.agreement.concurrency);
      }
    }
    this.finish(job, this.receiveQueue!);
    (job.done as DecompressDone)(null, message, message === null ? 0 : length);
    this.next(this.receiveQueue);
  }

  /** Take the finished `job` off its queue and give its slot back. */
  private finish(job: Job, queue: Job[]): void {
    job.finished = true;
    job.chunks = [];
    queue.shift();
    this.limiter.release();
  }

  private next(queue: Job[] | null): void {
    // A callback may have queued (and so scheduled) the next job already.
    if (!this.closed && queue !== null && queue.length > 0 && !queue[0]!.scheduled) this.schedule(queue[0]!);
  }

  /** @internal `job` failed: the context is dropped, later work is dropped, `done` gets the error. */
  fail(job: Job, error: WebSocketError): void {
    if (job.finished) return;
    job.finished = true;
    const engine = job.engine;
    if (engine !== null) {
      engine[kJob] = null;
      if (this.inflater === engine) this.inflater = null;
      if (this.deflater === engine) this.deflater = null;
      // Stops an inflate that is still producing output (a compression bomb) at once.
      engine.destroy();
    }
    this.limiter.release();
    this.close();
    job.done(error, null, 0);
  }
}
