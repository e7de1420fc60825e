import { isUtf8 } from 'node:buffer';

/**
 * Incremental, fail-fast UTF-8 validation (RFC 3629): bytes may arrive in any pieces, and
 * `push` returns false as soon as the bytes seen so far cannot begin a valid sequence, so a
 * bad text message is refused before it is complete. Whole runs of complete characters are
 * checked with the native `isUtf8`; only the (at most 3) bytes at each edge go through the
 * byte-wise state machine.
 */
export class Utf8Validator {
  /** Continuation bytes still expected for the current character (0 at a boundary). */
  private need = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4). */
  private low = 0x80;
  private high = 0xbf;

  /** Validate `bytes[start..end)`, continuing from earlier calls. False means invalid. */
  push(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    let i = start;
    // Finish a character split across calls.
    while (this.need > 0 && i < end) {
      if (!this.step(bytes[i]!)) return false;
      i++;
    }
    if (i >= end) return true;
    const tail = lastBoundary(bytes, i, end);
    if (tail > i && !isUtf8(bytes.subarray(i, tail))) return false;
    for (let j = tail; j < end; j++) if (!this.step(bytes[j]!)) return false;
    return true;
  }

  /** True when the bytes so far end on a character boundary (call at the end of a message). */
  get complete(): boolean {
    return this.need === 0;
  }

  reset(): void {
    this.need = 0;
    this.low = 0x80;
    this.high = 0xbf;
  }

  private step(byte: number): boolean {
    if (this.need > 0) {
      if (byte < this.low || byte > this.high) return false;
      this.need--;
      this.low = 0x80;
      this.high = 0xbf;
      return true;
    }
    if (byte < 0x80) return true;
    if (byte >= 0xc2 && byte <= 0xdf) {
      this.need = 1;
    } else if (byte >= 0xe0 && byte <= 0xef) {
      this.need = 2;
      if (byte === 0xe0) this.low = 0xa0; // no overlong 3-byte forms
      else if (byte === 0xed) this.high = 0x9f; // no UTF-16 surrogates
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      this.need = 3;
      if (byte === 0xf0) this.low = 0x90; // no overlong 4-byte forms
      else if (byte === 0xf4) this.high = 0x8f; // nothing above U+10FFFF
    } else {
      return false;
    }
    return true;
  }
}

/**
 * The index in [start, end] where the last complete character ends: everything before it is
 * whole characters (if valid), everything after is the start of one unfinished sequence.
 */
function lastBoundary(bytes: Uint8Array, start: number, end: number): number {
  const last = bytes[end - 1]!;
  if (last < 0x80) return end;
  // Walk back over at most 3 continuation bytes to the lead byte.
  let lead = end - 1;
  const stop = Math.max(start, end - 4);
  while (lead > stop && (bytes[lead]! & 0xc0) === 0x80) lead--;
  const byte = bytes[lead]!;
  const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
  return lead + length <= end ? end : lead;
}
