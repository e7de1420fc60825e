import { fileURLToPath } from 'node:url';
import {
  App,
  AsyncWebSocketApp,
  HttpResponse,
  asyncWebsocketHandler,
  metricsRoute,
  rejectUpgrade,
  serveDir,
  type HttpRequest,
  type Message,
  type UpgradeRequest,
} from '../index.js';

/**
 * The chat demo's server: the page in `demo/` and a WebSocket route `/ws` on our HTTP `App`,
 * with the event app linked in. It faces the internet, so everything a client sends is
 * checked: names, rooms and messages have bounded lengths and no control characters, a client
 * may send only so fast, and the page renders all text as text (never as HTML).
 *
 * The wire format, JSON text messages:
 * - client: `{ type: 'say', text }`; name and room are in the URL: `/ws?name=N&room=R`
 * - server: `welcome { you, room, members }`, `join { member }`, `leave { member }`,
 *   `say { from, text, at }`, `stats { connections, rooms, messagesPerSecond, sentPerSecond,
 *   bytesPerSecond, messagesTotal }` (from the event app's metrics), `error { text }`. A member
 *   is `{ id, name }`.
 * - `GET /metrics`: the same figures in the Prometheus text format.
 * - a name or room the server refuses ends the connection with close code 4400 and the reason,
 *   so the page can say what is wrong instead of reconnecting.
 */

export const LIMITS = {
  /** Characters (code points) in a name. */
  nameLength: 24,
  /** Room names: lower-case letters, digits and dashes. */
  roomPattern: /^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$/,
  /** Characters in one chat message. */
  textLength: 500,
  /** Bytes in one WebSocket message; more closes the connection with 1009. */
  messageBytes: 4096,
  /** Messages a client may send per second on average, and in a burst. */
  ratePerSecond: 5,
  burst: 10,
  /** Connections the server takes at once; more are refused with 503. */
  connections: 1000,
};

/** Close code for a join the server refuses (name or room); the reason says why. */
export const CLOSE_REFUSED = 4400;

const DEMO_DIR = fileURLToPath(new URL('../../demo/', import.meta.url));
// Anything but printable text: control characters, format characters (bidi overrides, zero-width),
// line and paragraph separators, unpaired surrogates.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

interface Member {
  id: number;
  name: string;
}

interface Person extends Member {
  room: string;
  /** Token bucket for the rate limit. */
  tokens: number;
  refilledAt: number;
}

type Joining = { ok: true; name: string; room: string } | { ok: false; reason: string };

export interface ChatServerOptions {
  /** Where the figures are sent from, in ms. Default 2000. */
  statsIntervalMs?: number;
  /** The directory of the page. Default: the package's `demo/`. */
  staticDir?: string;
}

/** Check a name: trimmed, 1 to 24 characters, printable. */
export function checkName(raw: string | null): { ok: true; value: string } | { ok: false; reason: string } {
  const name = (raw ?? '').normalize('NFC').trim().replace(/\s+/g, ' ');
  if (name === '') return { ok: false, reason: 'pick a name' };
  if ([...name].length > LIMITS.nameLength) return { ok: false, reason: `a name has at most ${LIMITS.nameLength} characters` };
  if (UNPRINTABLE.test(name)) return { ok: false, reason: 'a name cannot contain control characters' };
  return { ok: true, value: name };
}

/** Check a room: 1 to 24 lower-case letters, digits and dashes (not first or last). */
export function checkRoom(raw: string | null): { ok: true; value: string } | { ok: false; reason: string } {
  const room = (raw ?? '').trim().toLowerCase();
  if (!LIMITS.roomPattern.test(room)) return { ok: false, reason: 'a room is 1 to 24 letters, digits or dashes' };
  return { ok: true, value: room };
}

function parseJoin(request: UpgradeRequest): Joining {
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
  const name = checkName(query.get('name'));
  if (!name.ok) return name;
  const room = checkRoom(query.get('room') ?? 'lobby');
  if (!room.ok) return room;
  return { ok: true, name: name.value, room: room.value };
}

/**
 * Refuse pages of other sites: a browser always sends `Origin`, and a WebSocket is not bound
 * by the same-origin policy, so without this any page could chat in a visitor's name.
 */
function sameOrigin(request: UpgradeRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true; // not a browser (a CLI, a test client)
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** The page's responses carry headers that keep injected content inert. */
function withSecurityHeaders(handler: (request: HttpRequest) => Promise<HttpResponse>) {
  return async (request: HttpRequest): Promise<HttpResponse> =>
    (await handler(request))
      .withHeader('Content-Security-Policy', "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
      .withHeader('X-Content-Type-Options', 'nosniff')
      .withHeader('Referrer-Policy', 'no-referrer')
      .withHeader('Cache-Control', 'no-cache');
}

/** The chat server: an `App` to `run`, and the event app behind its `/ws` route. */
export function createChatServer(options: ChatServerOptions = {}): { app: App; chat: AsyncWebSocketApp<undefined, Person | Joining> } {
  const rooms = new Map<string, Map<number, Person>>();
  const topic = (room: string): string => `room:${room}`;

  const chat = AsyncWebSocketApp.unlinked<undefined, Person | Joining>(undefined, {
    maxMessageSize: LIMITS.messageBytes,
    // A reader that falls far behind is closed rather than buffered for (it reconnects).
    maxBufferedAmount: 512 * 1024,
    backpressure: 'close',
    heartbeat: { intervalMs: 15_000, timeoutMs: 30_000 },
    onUpgrade: (request) => {
      if (!sameOrigin(request)) return rejectUpgrade(403, 'cross-origin WebSocket refused\n');
      if (chat.sender().connectionCount >= LIMITS.connections) return rejectUpgrade(503, 'the chat is full\n');
      return { data: parseJoin(request) };
    },
  })
    .withStreamState((_stream, data): Person | Joining => data as Joining)
    .withConnectHandler((stream) => {
      const joining = stream.state as Joining;
      if (!joining.ok) {
        stream.close(CLOSE_REFUSED, joining.reason);
        return;
      }
      const person: Person = { id: stream.id, name: joining.name, room: joining.room, tokens: LIMITS.burst, refilledAt: Date.now() };
      stream.state = person;
      let members = rooms.get(person.room);
      if (members === undefined) rooms.set(person.room, (members = new Map()));
      members.set(person.id, person);
      stream.subscribe(topic(person.room));
      stream.send(JSON.stringify({ type: 'welcome', you: memberOf(person), room: person.room, members: [...members.values()].map(memberOf) }));
      stream.publish(topic(person.room), JSON.stringify({ type: 'join', member: memberOf(person) }));
    })
    .withMessageHandler((stream, message) => {
      const person = stream.state as Person | Joining;
      if (!('id' in person)) return;
      const text = sayText(message);
      if (text === null) {
        stream.send(JSON.stringify({ type: 'error', text: `send {"type":"say","text":"..."} with 1 to ${LIMITS.textLength} characters` }));
        return;
      }
      if (!takeToken(person)) {
        stream.send(JSON.stringify({ type: 'error', text: 'slow down: too many messages' }));
        return;
      }
      chat.sender().publish(topic(person.room), JSON.stringify({ type: 'say', from: memberOf(person), text, at: Date.now() }));
    })
    .withDisconnectHandler((stream) => {
      const person = stream.state as Person | Joining;
      if (!('id' in person)) return;
      const members = rooms.get(person.room);
      members?.delete(person.id);
      if (members?.size === 0) rooms.delete(person.room);
      chat.sender().publish(topic(person.room), JSON.stringify({ type: 'leave', member: memberOf(person) }));
    });

  // Live figures: rates from the differences of the app's counters between two ticks.
  let last = chat.metrics();
  let lastAt = Date.now();
  const perSecond = (now: number, then: number, seconds: number): number => Math.round(((now - then) / seconds) * 10) / 10;
  const statsTimer = setInterval(() => {
    const figures = chat.metrics();
    const now = Date.now();
    const seconds = Math.max((now - lastAt) / 1000, 0.001);
    const stats = {
      type: 'stats',
      connections: figures.connections,
      rooms: rooms.size,
      messagesPerSecond: perSecond(figures.messagesReceived, last.messagesReceived, seconds),
      sentPerSecond: perSecond(figures.messagesSent, last.messagesSent, seconds),
      bytesPerSecond: Math.round((figures.bytesReceived + figures.bytesSent - last.bytesReceived - last.bytesSent) / seconds),
      messagesTotal: figures.messagesReceived,
    };
    last = figures;
    lastAt = now;
    if (figures.connections > 0) chat.sender().broadcast(JSON.stringify(stats));
  }, options.statsIntervalMs ?? 2000);
  statsTimer.unref();

  const page = withSecurityHeaders(serveDir(options.staticDir ?? DEMO_DIR));
  const app = new App()
    .withWebsocketRoute('/ws', asyncWebsocketHandler(chat.connectHook()))
    .withStatelessRoute('/metrics', metricsRoute(chat))
    .withStatelessRoute('/*', page);
  app.onClose(() => clearInterval(statsTimer));
  return { app, chat };
}

function memberOf(person: Person): Member {
  return { id: person.id, name: person.name };
}

/** The text of a valid `say` message, trimmed; null for anything else. */
function sayText(message: Message): string | null {
  if (!message.isText) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.text());
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { type, text } = parsed as { type?: unknown; text?: unknown };
  if (type !== 'say' || typeof text !== 'string') return null;
  const trimmed = text.normalize('NFC').trim();
  if (trimmed === '' || [...trimmed].length > LIMITS.textLength) return null;
  // Newlines and tabs are fine in a message; other control characters are dropped.
  return trimmed.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu, (c) => (c === '\n' || c === '\t' ? c : ''));
}

/** The rate limit: a token bucket of `burst` tokens refilled at `ratePerSecond`. */
function takeToken(person: Person): boolean {
  const now = Date.now();
  person.tokens = Math.min(LIMITS.burst, person.tokens + ((now - person.refilledAt) / 1000) * LIMITS.ratePerSecond);
  person.refilledAt = now;
  if (person.tokens < 1) return false;
  person.tokens--;
  return true;
}
