/**
 * A process-wide cap on zlib operations running at once. Each job is one message compressed
 * or one frame decompressed; jobs over the cap wait in arrival order. Why a cap: every job in
 * flight holds a zlib context and output buffers allocated and freed on the thread pool, and
 * thousands of those at once fragment the allocator so badly that resident memory stays high
 * long after the work is done. A handful at a time keeps memory flat and, with the thread
 * pool's four threads, costs little throughput.
 */
export class ZlibLimiter {
  readonly limit: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private head = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Jobs running now (at most `limit`). */
  get active(): number {
    return this.running;
  }

  /** Jobs waiting for a slot. */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Run `job` now or once a slot is free; it must call `release()` exactly once when done. */
  run(job: () => void): void {
    jobsStarted++;
    if (this.running < this.limit) {
      this.running++;
      job();
      return;
    }
    this.waiting.push(job);
  }

  release(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as unknown as () => void;
      if (this.head === this.waiting.length) {
        this.waiting.length = 0;
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      // The slot passes to the next job: `running` stays the same.
      next();
      return;
    }
    this.running--;
  }
}

const limiters = new Map<number, ZlibLimiter>();
let jobsStarted = 0;

/** The limiter shared by every connection configured with this `concurrency`. */
export function limiterFor(concurrency: number): ZlibLimiter {
  let limiter = limiters.get(concurrency);
  if (limiter === undefined) {
    limiter = new ZlibLimiter(concurrency);
    limiters.set(concurrency, limiter);
  }
  return limiter;
}

/** zlib operations running now, over all limiters (for metrics and tests). */
export function zlibJobsActive(): number {
  let total = 0;
  for (const limiter of limiters.values()) total += limiter.active;
  return total;
}

/** zlib operations started since the process began (messages compressed, frames decompressed). */
export function zlibJobsStarted(): number {
  return jobsStarted;
}
