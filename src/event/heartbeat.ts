/**
 * Heartbeats for many connections with ONE timer: every `intervalMs` a sweep looks at each
 * connection once. A connection that showed activity since the last sweep (any frame received:
 * a message or a pong) is alive; one that did not is pinged; one silent for longer than
 * `timeoutMs` is expired (its owner closes it).
 *
 * Activity is recorded by setting a flag (`heartbeatSeen = true`), not by reading the clock,
 * so the per-message cost is one store. Silence is measured from the sweep that last saw the
 * flag (or from joining), which is never earlier than the real last activity: a connection is
 * never expired before `timeoutMs` of real silence, and is expired at most two intervals after
 * (one for the sweep to see the last activity, one for the sweep that expires it).
 */

export interface HeartbeatOptions {
  /** How often the sweep runs (and silent connections are pinged). Default 5000 ms. */
  intervalMs?: number;
  /** A connection silent for longer than this is closed. Default 10000 ms. */
  timeoutMs?: number;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5000;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10000;

/** What the sweep needs on each connection. */
export interface HeartbeatMember {
  /** Set by the owner on any activity; cleared by the sweep. */
  heartbeatSeen: boolean;
  /** When the connection was last known alive (ms since the epoch). Set on joining. */
  heartbeatSince: number;
}

export interface HeartbeatActions<M> {
  /** Ping a connection that has been silent since the last sweep. */
  ping(member: M): void;
  /** Close a connection silent for longer than the timeout. May be called again on a later
   * sweep if the connection is still listed, so it must be idempotent. */
  expire(member: M): void;
}

export class HeartbeatSweep<M extends HeartbeatMember> {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  private readonly members: () => Iterable<M>;
  private readonly actions: HeartbeatActions<M>;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: HeartbeatOptions, members: () => Iterable<M>, actions: HeartbeatActions<M>) {
    const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) throw new RangeError(`invalid heartbeat interval ${intervalMs}`);
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new RangeError(`invalid heartbeat timeout ${timeoutMs}`);
    this.intervalMs = intervalMs;
    this.timeoutMs = timeoutMs;
    this.members = members;
    this.actions = actions;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Start sweeping (does nothing if running). The timer does not keep the process alive. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass over every connection (normally run by the timer). */
  sweep(now: number = Date.now()): void {
    const { actions, timeoutMs } = this;
    for (const member of this.members()) {
      if (member.heartbeatSeen) {
        member.heartbeatSeen = false;
        member.heartbeatSince = now;
      } else if (now - member.heartbeatSince > timeoutMs) {
        actions.expire(member);
      } else {
        actions.ping(member);
      }
    }
  }
}
