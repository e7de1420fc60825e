import type { BrokerHealthEvent, BrokerHealthListener, BrokerStats } from './types.js';

/** How often at most a `'dropped'` event is emitted while messages are being dropped. */
export const DROP_REPORT_INTERVAL_MS = 1000;

/**
 * The counters and health listeners every broker has. Drops are counted at once and reported
 * in one `'dropped'` event per `DROP_REPORT_INTERVAL_MS` at most, so an outage under heavy
 * traffic costs one timer, not an event per message.
 */
export class BrokerHealth {
  connected = false;
  published = 0;
  received = 0;
  dropped = 0;
  gaps = 0;
  private readonly listeners = new Set<BrokerHealthListener>();
  private unreported = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  on(listener: BrokerHealthListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  emit(event: BrokerHealthEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        // A failing health listener must not break delivery; say so where it can be seen.
        console.error('humphrey-ws: broker health listener failed:', error);
      }
    }
  }

  /** The link came up; false if it was up already. */
  up(): boolean {
    if (this.connected) return false;
    this.connected = true;
    this.emit({ type: 'connected' });
    return true;
  }

  /** The link went down; false if it was down already. */
  down(error: Error | undefined): boolean {
    if (!this.connected) return false;
    this.connected = false;
    this.emit({ type: 'disconnected', error });
    return true;
  }

  /** This member was not listening from `since` until now: it may have missed messages. */
  gap(since: number, topics: readonly string[]): void {
    this.gaps++;
    this.emit({ type: 'gap', since, until: Date.now(), topics });
  }

  /** `count` messages could not be handed across. */
  drop(count = 1): void {
    this.dropped += count;
    this.unreported += count;
    if (this.timer !== null) return;
    this.timer = setTimeout(() => this.reportDrops(), DROP_REPORT_INTERVAL_MS);
    this.timer.unref();
  }

  /** Emit the pending `'dropped'` event now (e.g. when closing). */
  reportDrops(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const count = this.unreported;
    if (count === 0) return;
    this.unreported = 0;
    this.emit({ type: 'dropped', count });
  }

  stats(topics: number): BrokerStats {
    return { connected: this.connected, published: this.published, received: this.received, dropped: this.dropped, topics, gaps: this.gaps };
  }
}
