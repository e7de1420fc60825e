import { constants as zlibConstants } from 'node:zlib';
import { WebSocketError } from '../errors.js';
import { formatExtension, parseExtensions, type ExtensionElement, type ExtensionParam } from './extensions.js';

/** The extension's registered name (RFC 7692 section 7). */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/**
 * permessage-deflate (RFC 7692) settings. The same shape configures a server (what it accepts
 * and imposes) and a client (what it offers); every field is optional.
 */
export interface PerMessageDeflateOptions {
  /**
   * Messages smaller than this many bytes are sent uncompressed: for short messages the
   * compressed form is hardly smaller and the zlib call costs more than it saves. Default 1024.
   */
  threshold?: number;
  /**
   * The server starts every message it compresses with an empty window (no context
   * takeover). A server sets it by policy: then a message broadcast to many connections is
   * compressed once and the same bytes go to all of them, and no compressor is kept per
   * connection between messages, at some cost in ratio. A client asks the server for it.
   * Default false.
   */
  serverNoContextTakeover?: boolean;
  /**
   * The client starts every message it compresses with an empty window. A server imposes it
   * (then it keeps no decompressor per connection between messages); a client offers it and
   * keeps to it. Default false.
   */
  clientNoContextTakeover?: boolean;
  /**
   * Base-2 logarithm of the server's compression window, 9-15 on a server (zlib cannot
   * compress with a window of 8 bytes, so an offer demanding 8 is declined), 8-15 on a client
   * (the most it asks the server to use). Smaller windows use less memory and compress less.
   * Default 15 (32 KiB).
   */
  serverMaxWindowBits?: number;
  /**
   * Base-2 logarithm of the client's compression window: on a server 8-15, the most it lets a
   * client that supports the parameter use; on a client 9-15, the most it will use itself.
   * Default 15.
   */
  clientMaxWindowBits?: number;
  /** zlib memory level of the compressor, 1-9: lower uses less memory per context. Default 8. */
  memLevel?: number;
  /** zlib compression level, 0 (none) to 9 (best); -1 is zlib's default (6). Default -1. */
  level?: number;
  /**
   * The most zlib operations (one message compressed, or one frame decompressed) running at
   * once in this process, among all connections configured with the same value; the rest wait
   * in order. zlib memory allocated and freed by many jobs at once fragments the heap badly,
   * so resident memory grows far beyond what is in use; a small cap keeps it flat at little
   * cost in throughput. Default 10.
   */
  concurrency?: number;
}

/** Options with every default filled in and checked. */
export interface DeflateConfig {
  readonly role: 'server' | 'client';
  readonly threshold: number;
  readonly serverNoContextTakeover: boolean;
  readonly clientNoContextTakeover: boolean;
  readonly serverMaxWindowBits: number;
  readonly clientMaxWindowBits: number;
  readonly memLevel: number;
  readonly level: number;
  readonly concurrency: number;
}

/**
 * What both ends agreed for one connection, from this end's point of view: the window and
 * context takeover of what it sends (its compressor) and of what it receives (its
 * decompressor), plus its own settings.
 */
export interface DeflateAgreement {
  /** Window bits this end compresses with; 0 when it must not compress (a window of 8). */
  readonly sendWindowBits: number;
  readonly sendNoContextTakeover: boolean;
  /** Window bits the peer compresses with (this end's decompressor). */
  readonly receiveWindowBits: number;
  readonly receiveNoContextTakeover: boolean;
  readonly threshold: number;
  readonly memLevel: number;
  readonly level: number;
  readonly concurrency: number;
}

export const DEFAULT_THRESHOLD = 1024;
export const DEFAULT_CONCURRENCY = 10;

function invalid(what: string): never {
  throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `perMessageDeflate: ${what}`);
}

function integerIn(name: string, value: number | undefined, low: number, high: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < low || value > high) invalid(`${name} must be an integer from ${low} to ${high}, got ${String(value)}`);
  return value;
}

function flag(name: string, value: boolean | undefined): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') invalid(`${name} must be a boolean`);
  return value;
}

/**
 * Resolve a `perMessageDeflate` option (`false`, `true` or an options object; `undefined`
 * means `enabledByDefault`) for one role. Returns null when compression is off; throws
 * `WS_ERR_INVALID_ARGUMENT` for a value out of range.
 */
export function resolveDeflateConfig(
  option: boolean | PerMessageDeflateOptions | undefined,
  role: 'server' | 'client',
  enabledByDefault: boolean,
): DeflateConfig | null {
  if (option === undefined) option = enabledByDefault;
  if (option === false) return null;
  const options: PerMessageDeflateOptions = option === true ? {} : option;
  if (typeof options !== 'object' || options === null) invalid('must be true, false or an options object');
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  if (typeof threshold !== 'number' || !(threshold >= 0)) invalid(`threshold must be a number of bytes, got ${String(threshold)}`);
  // The window this end compresses with must be 9-15; the peer's may be 8-15.
  const serverLow = role === 'server' ? 9 : 8;
  const clientLow = role === 'client' ? 9 : 8;
  return {
    role,
    threshold,
    serverNoContextTakeover: flag('serverNoContextTakeover', options.serverNoContextTakeover),
    clientNoContextTakeover: flag('clientNoContextTakeover', options.clientNoContextTakeover),
    serverMaxWindowBits: integerIn('serverMaxWindowBits', options.serverMaxWindowBits, serverLow, 15, 15),
    clientMaxWindowBits: integerIn('clientMaxWindowBits', options.clientMaxWindowBits, clientLow, 15, 15),
    memLevel: integerIn('memLevel', options.memLevel, 1, 9, 8),
    level: integerIn('level', options.level, -1, 9, zlibConstants.Z_DEFAULT_COMPRESSION),
    concurrency: integerIn('concurrency', options.concurrency, 1, 1024, DEFAULT_CONCURRENCY),
  };
}

const defaultConfigs = new Map<string, DeflateConfig>();
const configs = new WeakMap<PerMessageDeflateOptions, DeflateConfig>();

/**
 * `resolveDeflateConfig` for an option value that lives as long as its server or client, cached
 * so that an upgrade does not check the options again.
 */
export function deflateConfigFor(
  option: boolean | PerMessageDeflateOptions | undefined,
  role: 'server' | 'client',
  enabledByDefault: boolean,
): DeflateConfig | null {
  if (option === undefined) option = enabledByDefault;
  if (option === false) return null;
  if (option === true) {
    let config = defaultConfigs.get(role);
    if (config === undefined) defaultConfigs.set(role, (config = resolveDeflateConfig(true, role, false)!));
    return config;
  }
  let config = configs.get(option);
  if (config === undefined || config.role !== role) {
    config = resolveDeflateConfig(option, role, false)!;
    configs.set(option, config);
  }
  return config;
}

// Connections that agreed the same parameters share one agreement object: an idle connection
// that negotiated compression holds a reference, nothing more.
const agreements = new Map<string, DeflateAgreement>();
const AGREEMENTS_MAX = 1024;

function intern(agreement: DeflateAgreement): DeflateAgreement {
  const key = `${agreement.sendWindowBits}:${+agreement.sendNoContextTakeover}:${agreement.receiveWindowBits}:` +
    `${+agreement.receiveNoContextTakeover}:${agreement.threshold}:${agreement.memLevel}:${agreement.level}:${agreement.concurrency}`;
  const known = agreements.get(key);
  if (known !== undefined) return known;
  if (agreements.size < AGREEMENTS_MAX) agreements.set(key, Object.freeze(agreement));
  return agreement;
}

/** The parameters of one permessage-deflate offer or response, each at most once. */
interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** A number, or undefined when absent. */
  serverMaxWindowBits: number | undefined;
  /** A number, `true` (present without a value) or undefined when absent. */
  clientMaxWindowBits: number | true | undefined;
}

/** A window size value: a decimal integer 8-15 without leading zeros (RFC 7692 section 7.1.2). */
function windowBits(value: string | true): number | undefined {
  if (value === true || !/^(?:8|9|1[0-5])$/.test(value)) return undefined;
  return Number(value);
}

/**
 * The parameters of one element, or why they are unacceptable: a parameter that is unknown,
 * repeated or has an invalid value (RFC 7692 section 7). `inResponse` requires a value for
 * `client_max_window_bits`.
 */
function readParams(params: readonly ExtensionParam[], inResponse: boolean): DeflateParams | string {
  const result: DeflateParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const { name, value } of params) {
    if (seen.has(name)) return `parameter ${name} appears more than once`;
    seen.add(name);
    switch (name) {
      case 'server_no_context_takeover':
      case 'client_no_context_takeover':
        if (value !== true) return `parameter ${name} must not have a value`;
        if (name === 'server_no_context_takeover') result.serverNoContextTakeover = true;
        else result.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits': {
        const bits = windowBits(value);
        if (bits === undefined) return `server_max_window_bits must be 8-15, got ${value === true ? 'no value' : JSON.stringify(value)}`;
        result.serverMaxWindowBits = bits;
        break;
      }
      case 'client_max_window_bits': {
        if (value === true && !inResponse) {
          result.clientMaxWindowBits = true;
          break;
        }
        const bits = windowBits(value);
        if (bits === undefined) return `client_max_window_bits must be 8-15, got ${value === true ? 'no value' : JSON.stringify(value)}`;
        result.clientMaxWindowBits = bits;
        break;
      }
      default:
        return `unknown parameter ${name}`;
    }
  }
  return result;
}

/** zlib compresses raw deflate with at least 9 window bits; a smaller window is used as 9. */
function receiveBits(bits: number): number {
  return Math.max(bits, 9);
}

export interface ServerNegotiation {
  agreement: DeflateAgreement;
  /** The `Sec-WebSocket-Extensions` value for the 101 response. */
  response: string;
}

/**
 * Server side (RFC 7692 section 7): take the first acceptable permessage-deflate offer of a
 * request's `Sec-WebSocket-Extensions`. An offer is declined when an element is malformed, a
 * parameter is unknown, repeated or out of range, or it demands a server window of 8 bits.
 * Returns null when no offer is acceptable (the connection then runs uncompressed). Never
 * throws.
 */
export function negotiateAsServer(header: string | readonly string[] | undefined, config: DeflateConfig): ServerNegotiation | null {
  for (const element of parseExtensions(header)) {
    if (element === null || element.name !== PERMESSAGE_DEFLATE) continue;
    const offer = readParams(element.params, false);
    if (typeof offer === 'string') continue;
    const accepted = acceptOffer(offer, config);
    if (accepted !== null) return accepted;
  }
  return null;
}

function acceptOffer(offer: DeflateParams, config: DeflateConfig): ServerNegotiation | null {
  const params: ExtensionParam[] = [];
  // The server may add either no-context-takeover on its own (sections 7.1.1.1 and 7.1.1.2).
  // A client that offers client_no_context_takeover is held to it, so no decompressor is kept.
  const serverNoContextTakeover = offer.serverNoContextTakeover || config.serverNoContextTakeover;
  const clientNoContextTakeover = offer.clientNoContextTakeover || config.clientNoContextTakeover;
  if (serverNoContextTakeover) params.push({ name: 'server_no_context_takeover', value: true });
  if (clientNoContextTakeover) params.push({ name: 'client_no_context_takeover', value: true });

  // Section 7.1.2.1: answer with the same or a smaller value; the server may also limit itself
  // when the client did not ask.
  let serverBits = config.serverMaxWindowBits;
  if (offer.serverMaxWindowBits !== undefined) {
    serverBits = Math.min(serverBits, offer.serverMaxWindowBits);
    // zlib cannot compress with a window of 8 bits and a larger one is not allowed: decline.
    if (serverBits < 9) return null;
    params.push({ name: 'server_max_window_bits', value: String(serverBits) });
  } else if (serverBits < 15) {
    params.push({ name: 'server_max_window_bits', value: String(serverBits) });
  }

  // Section 7.1.2.2: only a client that offered the parameter may be told a limit.
  let clientBits = 15;
  if (offer.clientMaxWindowBits !== undefined) {
    clientBits = Math.min(config.clientMaxWindowBits, offer.clientMaxWindowBits === true ? 15 : offer.clientMaxWindowBits);
    if (clientBits < 15) params.push({ name: 'client_max_window_bits', value: String(clientBits) });
  }

  return {
    agreement: intern({
      sendWindowBits: serverBits,
      sendNoContextTakeover: serverNoContextTakeover,
      receiveWindowBits: receiveBits(clientBits),
      receiveNoContextTakeover: clientNoContextTakeover,
      threshold: config.threshold,
      memLevel: config.memLevel,
      level: config.level,
      concurrency: config.concurrency,
    }),
    response: formatExtension({ name: PERMESSAGE_DEFLATE, params }),
  };
}

/** Client side: the `Sec-WebSocket-Extensions` value offering permessage-deflate. */
export function clientOffer(config: DeflateConfig): string {
  const params: ExtensionParam[] = [];
  if (config.serverNoContextTakeover) params.push({ name: 'server_no_context_takeover', value: true });
  if (config.clientNoContextTakeover) params.push({ name: 'client_no_context_takeover', value: true });
  if (config.serverMaxWindowBits < 15) params.push({ name: 'server_max_window_bits', value: String(config.serverMaxWindowBits) });
  // Without a value: the client supports the parameter and lets the server choose.
  params.push({ name: 'client_max_window_bits', value: config.clientMaxWindowBits < 15 ? String(config.clientMaxWindowBits) : true });
  const element: ExtensionElement = { name: PERMESSAGE_DEFLATE, params };
  return formatExtension(element);
}

/**
 * Client side: check the server's `Sec-WebSocket-Extensions` answer to `clientOffer(config)`
 * (`config` null when nothing was offered). Returns the agreement, or null when the server
 * declined. Throws `WS_ERR_HANDSHAKE` when the answer must fail the connection (RFC 7692
 * section 7): an extension that was not offered, more than one, a malformed element, a
 * parameter that is unknown, repeated, without a required value or out of range, a window
 * larger than offered, or `client_max_window_bits` the client did not offer.
 */
export function acceptAsClient(header: string | readonly string[] | undefined, config: DeflateConfig | null): DeflateAgreement | null {
  const fail = (why: string): never => {
    throw new WebSocketError('WS_ERR_HANDSHAKE', `WebSocket handshake failed: ${why}`);
  };
  const elements = parseExtensions(header);
  if (elements.length === 0) return null;
  if (elements.includes(null)) fail('malformed Sec-WebSocket-Extensions in the response');
  if (config === null) fail('server chose an extension that was not offered');
  if (elements.length > 1) fail('server chose more than one extension');
  const element = elements[0]!;
  if (element.name !== PERMESSAGE_DEFLATE) fail(`server chose extension ${element.name} that was not offered`);
  const answer = readParams(element.params, true);
  if (typeof answer === 'string') fail(`invalid permessage-deflate response: ${answer}`);
  const params = answer as DeflateParams;
  let serverBits = 15;
  if (params.serverMaxWindowBits !== undefined) {
    if (config!.serverMaxWindowBits < 15 && params.serverMaxWindowBits > config!.serverMaxWindowBits) {
      fail(`server_max_window_bits=${params.serverMaxWindowBits} is larger than offered (${config!.serverMaxWindowBits})`);
    }
    serverBits = params.serverMaxWindowBits;
  }
  let clientBits = config!.clientMaxWindowBits;
  if (params.clientMaxWindowBits !== undefined) {
    // clientOffer always includes the parameter; a value larger than offered is refused.
    const bits = params.clientMaxWindowBits as number;
    if (bits > config!.clientMaxWindowBits) fail(`client_max_window_bits=${bits} is larger than offered (${config!.clientMaxWindowBits})`);
    clientBits = bits;
  }
  return {
    // zlib cannot compress with a window of 8 bits: then this client sends uncompressed,
    // which the extension allows (it decides per message).
    sendWindowBits: clientBits < 9 ? 0 : clientBits,
    sendNoContextTakeover: params.clientNoContextTakeover || config!.clientNoContextTakeover,
    receiveWindowBits: receiveBits(serverBits),
    receiveNoContextTakeover: params.serverNoContextTakeover,
    threshold: config!.threshold,
    memLevel: config!.memLevel,
    level: config!.level,
    concurrency: config!.concurrency,
  };
}
