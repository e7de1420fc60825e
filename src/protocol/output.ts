import { toBuffer } from './bytes.js';
import { COPY_THRESHOLD, headerSize, writeHeader } from './frame.js';

/** Frame payloads up to this size are copied into the output buffer; larger ones are kept by reference. */
const COPY_LIMIT = COPY_THRESHOLD;
/** Size of the first output buffer; later ones double, up to `MAX_BUFFER`. */
const INITIAL_BUFFER = 1024;
/** Largest output buffer made for small frames. */
const MAX_BUFFER = 64 * 1024;

/**
 * The output a server connection produces between two writes of its owner (one event-loop
 * turn, for the socket adapter): the connection encodes its frames straight into `out` (between
 * `start` and `end`), so there is no buffer per frame; `chunks` holds what came before that
 * region, in order: filled output buffers, bytes queued as they are (shared frames) and large
 * payloads kept by reference. The owner writes `chunks` then the region, and calls `clear`.
 * Without I/O: the owner decides when the bytes leave.
 */
export class FrameOutput {
  out: Buffer | null = null;
  start = 0;
  end = 0;
  chunks: Buffer[] | null = null;
  /** Bytes queued in all. */
  bytes = 0;
  /** Whole data messages encoded (the last frame of each), for the owner's figures. */
  messages = 0;

  /** Queue `bytes` as they are (kept by reference: they must not be modified). */
  append(bytes: Buffer): void {
    this.cut();
    (this.chunks ??= []).push(bytes);
    this.bytes += bytes.length;
  }

  /** Encode one unmasked frame. A payload over COPY_LIMIT is kept by reference, not copied. */
  frame(opcode: number, payload: Uint8Array, fin: boolean, rsv1: boolean): void {
    if (fin && opcode < 8) this.messages++;
    const length = payload.length;
    const size = headerSize(length, false);
    if (length <= COPY_LIMIT) {
      const out = this.room(size + length);
      const at = writeHeader(out, this.end, opcode, length, fin, rsv1, undefined);
      if (length < 16) {
        // A byte loop costs about 1 ns a byte, TypedArray#set about 16 ns whatever the size.
        for (let i = 0; i < length; i++) out[at + i] = payload[i]!;
      } else {
        out.set(payload, at);
      }
      this.end = at + length;
    } else {
      const out = this.room(size);
      this.end = writeHeader(out, this.end, opcode, length, fin, rsv1, undefined);
      this.cut();
      (this.chunks ??= []).push(toBuffer(payload));
    }
    this.bytes += size + length;
  }

  /**
   * Encode one unmasked frame whose payload is `parts` in order (`length` bytes in all): copied
   * when small, else kept by reference (no join).
   */
  frameParts(opcode: number, parts: readonly Buffer[], length: number): void {
    this.messages++;
    const size = headerSize(length, false);
    if (length <= COPY_LIMIT) {
      const out = this.room(size + length);
      let at = writeHeader(out, this.end, opcode, length, true, false, undefined);
      for (let i = 0; i < parts.length; i++) {
        out.set(parts[i]!, at);
        at += parts[i]!.length;
      }
      this.end = at;
    } else {
      const out = this.room(size);
      this.end = writeHeader(out, this.end, opcode, length, true, false, undefined);
      this.cut();
      const chunks = (this.chunks ??= []);
      for (let i = 0; i < parts.length; i++) chunks.push(parts[i]!);
    }
    this.bytes += size + length;
  }

  /** The output buffer, with room for `size` more bytes at `end`. */
  private room(size: number): Buffer {
    let out = this.out;
    if (out !== null && this.end + size <= out.length) return out;
    this.cut();
    const next = out === null ? INITIAL_BUFFER : Math.min(out.length * 2, MAX_BUFFER);
    out = this.out = Buffer.allocUnsafe(Math.max(next, size));
    this.start = 0;
    this.end = 0;
    return out;
  }

  /** Move the filled part of the output buffer to `chunks` (before something by reference). */
  private cut(): void {
    if (this.end > this.start) {
      (this.chunks ??= []).push(this.out!.subarray(this.start, this.end));
      this.start = this.end;
    }
  }

  /**
   * Forget what was handed out. (Keeping the unused rest of the output buffer for the next
   * turn measured slower than a fresh buffer per turn.)
   */
  clear(): void {
    this.out = null;
    this.start = 0;
    this.end = 0;
    this.chunks = null;
    this.bytes = 0;
    this.messages = 0;
  }
}
