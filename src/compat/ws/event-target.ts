import type { EventEmitter } from 'node:events';

// The WHATWG-style surface of `ws`'s WebSocket: `addEventListener`/`removeEventListener` and
// the `onopen`/`onmessage`/`onclose`/`onerror` attributes, as wrappers over the EventEmitter
// events. A wrapper remembers the listener it calls, so removing that listener finds it.

/** The listener a wrapper calls. */
const kListener = Symbol('humphrey-ws compat listener');
/** Set on the wrapper of an `on<type>` attribute (not removable with `removeEventListener`). */
const kAttribute = Symbol('humphrey-ws compat attribute');

/** A simple event: its `type` and the WebSocket it came from (`target`). */
export class Event {
  readonly type: string;
  target: unknown = null;

  constructor(type: string) {
    this.type = type;
  }
}

/** The `close` event: the close code, the reason as a string, and whether the handshake completed. */
export class CloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;

  constructor(type: string, init: { code?: number; reason?: string; wasClean?: boolean } = {}) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
    this.wasClean = init.wasClean ?? false;
  }
}

/** The `error` event: the error and its message. */
export class ErrorEvent extends Event {
  readonly error: unknown;
  readonly message: string;

  constructor(type: string, init: { error?: unknown; message?: string } = {}) {
    super(type);
    this.error = init.error ?? null;
    this.message = init.message ?? '';
  }
}

/** The `message` event: `data` is a string for text, else per `binaryType`. */
export class MessageEvent extends Event {
  readonly data: unknown;

  constructor(type: string, init: { data?: unknown } = {}) {
    super(type);
    this.data = init.data ?? null;
  }
}

export type EventListener = ((event: Event) => void) | { handleEvent(event: Event): void };

/** What the wrappers read from the WebSocket when they build a close event. */
export interface EventSource extends EventEmitter {
  /** Whether both close frames were exchanged. */
  readonly cleanlyClosed: boolean;
}

type Wrapper = ((...args: unknown[]) => void) & { [kListener]?: EventListener; [kAttribute]?: boolean };

function call(listener: EventListener, target: unknown, event: Event): void {
  event.target = target;
  if (typeof listener === 'object') listener.handleEvent.call(listener, event);
  else listener.call(target, event);
}

function wrap(type: string, listener: EventListener): Wrapper | null {
  let wrapper: Wrapper;
  switch (type) {
    case 'message':
      wrapper = function (this: unknown, data: unknown, isBinary: unknown) {
        call(listener, this, new MessageEvent('message', { data: isBinary ? data : String(data) }));
      };
      break;
    case 'close':
      wrapper = function (this: EventSource, code: unknown, reason: unknown) {
        call(listener, this, new CloseEvent('close', { code: code as number, reason: String(reason), wasClean: this.cleanlyClosed }));
      };
      break;
    case 'error':
      wrapper = function (this: unknown, error: unknown) {
        call(listener, this, new ErrorEvent('error', { error, message: (error as Error).message }));
      };
      break;
    case 'open':
      wrapper = function (this: unknown) {
        call(listener, this, new Event('open'));
      };
      break;
    default:
      return null;
  }
  wrapper[kListener] = listener;
  return wrapper;
}

function isWrapperOf(candidate: unknown, listener: unknown, attribute: boolean): boolean {
  const wrapper = candidate as Wrapper;
  return wrapper[kListener] === listener && (wrapper[kAttribute] === true) === attribute;
}

/**
 * Add `listener` for `type` (`open`, `message`, `close` or `error`; other types are ignored).
 * Adding the same listener twice does nothing. `options.once` removes it after one call.
 */
function addEventListener(this: EventEmitter, type: string, listener: EventListener, options: { once?: boolean } = {}): void {
  if (typeof listener !== 'function' && (typeof listener !== 'object' || listener === null)) return;
  const attribute = (options as { [kAttribute]?: boolean })[kAttribute] === true;
  if (!attribute) {
    for (const existing of this.listeners(type)) if (isWrapperOf(existing, listener, false)) return;
  }
  const wrapper = wrap(type, listener);
  if (wrapper === null) return;
  if (attribute) wrapper[kAttribute] = true;
  if (options.once) this.once(type, wrapper);
  else this.on(type, wrapper);
}

/** Remove a listener added with `addEventListener`. */
function removeEventListener(this: EventEmitter, type: string, listener: EventListener): void {
  for (const existing of this.listeners(type)) {
    if (isWrapperOf(existing, listener, false)) {
      this.removeListener(type, existing as Wrapper);
      return;
    }
  }
}

/**
 * Give `prototype` `addEventListener`, `removeEventListener` and the `on<type>` attributes
 * (enumerable accessors, as a browser's WebSocket has them).
 */
export function installEventTarget(prototype: object): void {
  Object.defineProperty(prototype, 'addEventListener', { value: addEventListener, writable: true, configurable: true });
  Object.defineProperty(prototype, 'removeEventListener', { value: removeEventListener, writable: true, configurable: true });
  for (const type of ['open', 'error', 'close', 'message']) {
    Object.defineProperty(prototype, `on${type}`, {
      enumerable: true,
      configurable: true,
      get(this: EventEmitter) {
        for (const listener of this.listeners(type)) {
          const wrapper = listener as Wrapper;
          if (wrapper[kAttribute] === true) return wrapper[kListener];
        }
        return null;
      },
      set(this: EventEmitter, handler: unknown) {
        for (const listener of this.listeners(type)) {
          if ((listener as Wrapper)[kAttribute] === true) {
            this.removeListener(type, listener as Wrapper);
            break;
          }
        }
        if (typeof handler !== 'function') return;
        addEventListener.call(this, type, handler as EventListener, { [kAttribute]: true } as { once?: boolean });
      },
    });
  }
}

/** The members `installEventTarget` adds, for the class's type. */
export interface WebSocketEventTarget {
  addEventListener(type: string, listener: EventListener, options?: { once?: boolean }): void;
  removeEventListener(type: string, listener: EventListener): void;
  onopen: ((event: Event) => void) | null;
  onerror: ((event: ErrorEvent) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
}
