import { deflateConfigFor, type DeflateConfig, type PerMessageDeflateOptions } from '../../protocol/deflate/negotiate.js';

/**
 * `ws`'s `perMessageDeflate` settings, as far as they map onto this library's: the window,
 * context takeover and threshold options; `zlibDeflateOptions.level` and `.memLevel`;
 * `concurrencyLimit`. `clientMaxWindowBits: true` is the default (offer the parameter, let the
 * server choose). Other zlib options are ignored.
 */
export interface WsDeflateOptions {
  threshold?: number;
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number | boolean;
  concurrencyLimit?: number;
  zlibDeflateOptions?: { level?: number; memLevel?: number };
  zlibInflateOptions?: Record<string, unknown>;
}

const converted = new WeakMap<object, PerMessageDeflateOptions>();

function convert(option: WsDeflateOptions): PerMessageDeflateOptions {
  let ours = converted.get(option);
  if (ours === undefined) {
    ours = {};
    if (option.threshold !== undefined) ours.threshold = option.threshold;
    if (option.serverNoContextTakeover) ours.serverNoContextTakeover = true;
    if (option.clientNoContextTakeover) ours.clientNoContextTakeover = true;
    if (typeof option.serverMaxWindowBits === 'number') ours.serverMaxWindowBits = option.serverMaxWindowBits;
    if (typeof option.clientMaxWindowBits === 'number') ours.clientMaxWindowBits = option.clientMaxWindowBits;
    if (option.concurrencyLimit !== undefined) ours.concurrency = option.concurrencyLimit;
    if (option.zlibDeflateOptions?.level !== undefined) ours.level = option.zlibDeflateOptions.level;
    if (option.zlibDeflateOptions?.memLevel !== undefined) ours.memLevel = option.zlibDeflateOptions.memLevel;
    converted.set(option, ours);
  }
  return ours;
}

/**
 * The deflate configuration for a `perMessageDeflate` option (`true`, `false` or ws's settings
 * object), or null when it is off. `enabledByDefault`: a client offers it unless told not to.
 * Throws `WS_ERR_INVALID_ARGUMENT` for a value out of range.
 */
export function wsDeflateConfig(option: unknown, role: 'server' | 'client', enabledByDefault: boolean): DeflateConfig | null {
  if (option === undefined || option === null) return enabledByDefault ? deflateConfigFor(true, role, false) : null;
  if (typeof option !== 'object') return option ? deflateConfigFor(true, role, false) : null;
  return deflateConfigFor(convert(option as WsDeflateOptions), role, false);
}
