/**
 * The receive queue of a connection (a `WebSocketStream`'s messages not taken by `recv` yet, an
 * event-app peer's events waiting for its handler): a ring buffer whose capacity follows what is
 * queued. It doubles when full and halves when a quarter full, so a consumer that keeps a
 * standing backlog of k items holds O(k) slots however many items have passed through (an array
 * that is only reset when empty would grow by one slot per item forever).
 *
 * It also counts the queued bytes against a limit, with hysteresis: `push` says when the
 * bytes first exceed the limit (stop reading the socket), `resumeDue` when they are back at
 * half of it (read again), so a queue at the limit does not pause and resume on every item.
 */
export class ReceiveQueue<T> {
  private items: (T | undefined)[];
  private sizes: number[];
  private head = 0;
  private count = 0;
  private queuedBytes = 0;
  private over = false;

  constructor() {
    this.items = new Array<T | undefined>(MIN_CAPACITY);
    this.sizes = new Array<number>(MIN_CAPACITY).fill(0);
  }

  /** Items queued. */
  get length(): number {
    return this.count;
  }

  /** Bytes queued (the sum of the sizes given to `push`). */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Slots allocated (for tests: it follows `length`, not the number of items ever queued). */
  get capacity(): number {
    return this.items.length;
  }

  /** Whether the bytes went over the limit and have not come back to half of it yet. */
  get overLimit(): boolean {
    return this.over;
  }

  /**
   * Add `item` (of `size` bytes) at the tail. Returns true when this push took the queued bytes
   * over `limit` for the first time since they were last back at half of it: stop reading now.
   */
  push(item: T, size: number, limit: number): boolean {
    if (this.count === this.items.length) this.resize(this.items.length * 2);
    const at = (this.head + this.count) & (this.items.length - 1);
    this.items[at] = item;
    this.sizes[at] = size;
    this.count++;
    this.queuedBytes += size;
    if (this.over || this.queuedBytes <= limit) return false;
    this.over = true;
    return true;
  }

  /** Take the head item, or `undefined` when the queue is empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const items = this.items;
    const head = this.head;
    const item = items[head];
    items[head] = undefined;
    this.queuedBytes -= this.sizes[head]!;
    this.head = (head + 1) & (items.length - 1);
    this.count--;
    if (this.count === 0) this.head = 0;
    else if (items.length > MIN_CAPACITY && this.count <= items.length >>> 2) this.resize(items.length >>> 1);
    return item;
  }

  /**
   * True once the queue went over `limit` (see `push`) and has come back to at most half of it:
   * read again now. Clears the over-limit state.
   */
  resumeDue(limit: number): boolean {
    if (!this.over || this.queuedBytes > limit / 2) return false;
    this.over = false;
    return true;
  }

  /** Move the items, in order, into `capacity` slots (a power of two, at least `count`). */
  private resize(capacity: number): void {
    const items = new Array<T | undefined>(capacity);
    const sizes = new Array<number>(capacity).fill(0);
    const mask = this.items.length - 1;
    for (let i = 0; i < this.count; i++) {
      const from = (this.head + i) & mask;
      items[i] = this.items[from];
      sizes[i] = this.sizes[from]!;
    }
    this.items = items;
    this.sizes = sizes;
    this.head = 0;
  }
}

/** Smallest number of slots (a power of two, as every capacity is). */
const MIN_CAPACITY = 8;
