// Small conveniences over the protocol core that only tests use.
import { isUtf8 } from 'node:buffer';
import { maskInto } from '../../src/protocol/mask.js';

/** Mask (or unmask: the operation is its own inverse) `buffer` in place. */
export function maskInPlace(buffer: Uint8Array, key: Uint8Array): void {
  maskInto(buffer, 0, buffer, 0, buffer.length, key);
}

/** Whole-buffer UTF-8 validation, as the core does for a message that arrived complete. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bytes);
}
