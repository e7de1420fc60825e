import { isUtf8 } from 'node:buffer';
import { WebSocketError } from './errors.js';
import { CloseCode, MAX_HEADER_SIZE, Opcode } from './frame.js';
import { maskInto, unmaskAscii } from './mask.js';
import { Utf8Validator } from './utf8.js';

/** What the parser reports. Calls happen synchronously inside `push`, in wire order. */
export interface ParserEvents {
  /**
   * A complete data message. `payload` may be a view into the bytes that were pushed (no copy
   * is made when a message arrived in one piece), so keep it only if you own those bytes.
   */
  onMessage(payload: Buffer, isText: boolean): void;
  /**
   * Optional: a complete data message that arrived in several pieces (a large frame over many
   * reads, or fragments), as those pieces in order: views into the pushed bytes, `length`
   * bytes in all, never empty. An owner that can use them as they are (e.g. write them out
   * again) saves joining them. Without it the pieces are joined and passed to `onMessage`.
   */
  onMessageParts?(parts: Buffer[], length: number, isText: boolean): void;
  /** A complete control frame (close, ping or pong); its payload is at most 125 bytes. */
  onControl(opcode: number, payload: Buffer): void;
  /** The peer broke RFC 6455; `error.closeCode` is the code to close with. Parsing has stopped. */
  onError(error: WebSocketError): void;
  /**
   * Required with `compressed`: one frame of a compressed message (RSV1 on its first frame),
   * its payload as it arrived (not validated as UTF-8, not joined with the other frames);
   * `fin` marks the last frame, `isText` the message's kind. The owner may `hold()` the parser
   * until it has decompressed it, so later frames wait.
   */
  onCompressedFrame?(payload: Buffer, fin: boolean, isText: boolean): void;
}

export interface ParserOptions {
  /** `'server'` requires masked frames from the peer; `'client'` refuses masked frames. */
  role: 'server' | 'client';
  /** Largest data message accepted, counted across fragments, in bytes. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Most frames one data message may arrive in, empty ones included. Default 100,000: the
   * message size is the real guard; this bounds the bookkeeping per fragment (and the work
   * of empty fragments, which add nothing to the size).
   */
  maxFragments?: number;
  /**
   * permessage-deflate was agreed: RSV1 is allowed on the first frame of a data message and
   * marks it compressed (RFC 7692 section 6); its frames go to `onCompressedFrame`. Default
   * false: RSV1 fails the connection like RSV2 and RSV3.
   */
  compressed?: boolean;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
export const DEFAULT_MAX_FRAGMENTS = 100_000;
const EMPTY = Buffer.alloc(0);
/**
 * Messages at least this large that arrived in pieces go to `onMessageParts` unjoined. Smaller
 * ones are joined: a copy is cheap, and the small buffer does not keep the (up to 64 KiB) read
 * buffers its pieces are views of alive.
 */
export const PARTS_MIN_SIZE = 16 * 1024;

/**
 * Incremental RFC 6455 frame parser and message assembler: push bytes split anywhere, get
 * messages and control frames back. Every rule that can be judged from the bytes is enforced
 * here, as early as the bytes allow: reserved bits, opcodes, masking, control frame limits,
 * fragmentation order, the size limit (from the header, before any payload is buffered) and
 * UTF-8 of text (checked while a message is still arriving). After an error or `stop()` all
 * further input is ignored. Nothing here throws on bad input.
 */
export class FrameParser {
  private readonly events: ParserEvents;
  private readonly expectMask: boolean;
  private readonly maxMessageSize: number;
  private readonly maxFragments: number;
  private readonly rsv1Allowed: boolean;
  private stopped = false;
  /** Set by `hold()`: input is kept, unparsed, until `resume()`. */
  private held = false;
  private heldChunks: Buffer[] | null = null;
  private heldLength = 0;

  /** Bytes of an incomplete header carried over to the next push. */
  private leftover: Buffer | null = null;

  // The frame whose payload is being received.
  private inPayload = false;
  private fin = false;
  private opcode = 0;
  private masked = false;
  private maskKey: Buffer | null = null;
  private rotatedKey: Buffer | null = null;
  private payloadLength = 0;
  private received = 0;
  private parts: Buffer[] | null = null;
  private textFrame = false;
  /** The frame belongs to a compressed message. */
  private compressedFrame = false;

  // The fragmented message being assembled (messageOpcode 0 when none).
  private messageOpcode = 0;
  private fragments: Buffer[] | null = null;
  private messageLength = 0;
  /** Frames of the fragmented message so far. */
  private messageFrames = 0;
  private validator: Utf8Validator | null = null;
  private incrementalUtf8 = false;
  private messageCompressed = false;
  /** The events take messages in pieces (`onMessageParts`). */
  private readonly takesParts: boolean;

  constructor(events: ParserEvents, options: ParserOptions) {
    this.events = events;
    this.expectMask = options.role === 'server';
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.maxFragments = options.maxFragments ?? DEFAULT_MAX_FRAGMENTS;
    this.takesParts = typeof events.onMessageParts === 'function';
    this.rsv1Allowed = options.compressed === true;
  }

  /** Stop parsing: later input is ignored (used once a close frame has been received). */
  stop(): void {
    this.stopped = true;
    this.leftover = null;
    this.parts = null;
    this.fragments = null;
    this.heldChunks = null;
    this.heldLength = 0;
  }

  /**
   * Stop parsing after the current frame, keeping all input unparsed until `resume()` (called
   * from `onCompressedFrame`, so nothing after a message overtakes it while it decompresses).
   */
  hold(): void {
    this.held = true;
  }

  /** Bytes pushed while held, not parsed yet. */
  get heldBytes(): number {
    return this.heldLength;
  }

  /** Parse what was kept while held (which may hold again), then go on as usual. */
  resume(): void {
    if (!this.held) return;
    this.held = false;
    while (!this.held && !this.stopped && this.heldChunks !== null) {
      const chunks = this.heldChunks;
      const chunk = chunks.shift()!;
      if (chunks.length === 0) this.heldChunks = null;
      this.heldLength -= chunk.length;
      this.push(chunk);
    }
  }

  /** Keep `chunk` (or what is left of it) for `resume`, ahead of later input. */
  private keep(chunk: Buffer): void {
    if (chunk.length === 0) return;
    (this.heldChunks ??= []).unshift(chunk);
    this.heldLength += chunk.length;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /**
   * Parse `data`. The parser may unmask `data` in place and keep views of it, so the caller
   * must not reuse the buffer afterwards.
   */
  push(data: Buffer): void {
    if (this.stopped) return;
    if (this.held) {
      if (data.length > 0) (this.heldChunks ??= []).push(data);
      this.heldLength += data.length;
      return;
    }
    let chunk = data;
    let offset = 0;
    if (this.leftover !== null) {
      // A header split across pushes: join its start with just enough of the new bytes.
      const carried = this.leftover;
      const take = Math.min(MAX_HEADER_SIZE - carried.length, data.length);
      const joined = Buffer.concat([carried, data.subarray(0, take)]);
      const consumed = this.parseHeader(joined, 0);
      if (consumed < 0) {
        this.leftover = this.stopped ? null : joined;
        return;
      }
      this.leftover = null;
      offset = consumed - carried.length;
    }
    while (!this.stopped) {
      if (!this.inPayload) {
        if (offset >= chunk.length) return;
        const consumed = this.parseHeader(chunk, offset);
        if (consumed < 0) {
          // Copy: the rest of this chunk is small and should not pin the whole chunk.
          if (!this.stopped) this.leftover = Buffer.from(chunk.subarray(offset));
          return;
        }
        offset += consumed;
      }
      const wanted = this.payloadLength - this.received;
      const available = chunk.length - offset;
      if (available >= wanted) {
        if (this.received === 0 && this.fin && (this.opcode === Opcode.Text || this.opcode === Opcode.Binary)) {
          // The common case: a whole unfragmented message in this chunk.
          this.inPayload = false;
          this.wholeMessage(chunk, offset, wanted);
          offset += wanted;
          if (this.held) {
            this.keep(chunk.subarray(offset));
            return;
          }
          continue;
        }
        const piece = wanted === 0 ? EMPTY : chunk.subarray(offset, offset + wanted);
        offset += wanted;
        this.payloadPiece(piece, true);
        if (this.held) {
          this.keep(chunk.subarray(offset));
          return;
        }
      } else {
        if (available > 0) this.payloadPiece(chunk.subarray(offset), false);
        return;
      }
    }
  }

  /**
   * Parse the header at `buffer[offset]`. Returns its length and enters the payload state,
   * or -1 when more bytes are needed or the header broke a rule (then `stopped` is set).
   */
  private parseHeader(buffer: Buffer, offset: number): number {
    const available = buffer.length - offset;
    if (available < 2) return -1;
    const b0 = buffer[offset]!;
    const b1 = buffer[offset + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    // RSV1 is permessage-deflate's, on the first frame of a data message only (RFC 7692 section 6).
    const rsv1 = (b0 & 0x40) !== 0;
    if ((b0 & 0x30) !== 0 || (rsv1 && !(this.rsv1Allowed && (opcode === Opcode.Text || opcode === Opcode.Binary)))) {
      return this.fail('WS_ERR_UNEXPECTED_RSV', rsv1 && this.rsv1Allowed ? 'RSV1 is allowed only on the first frame of a data message' : 'reserved bits must be 0', CloseCode.ProtocolError);
    }
    if (opcode >= 0x8) {
      if (opcode > Opcode.Pong) return this.fail('WS_ERR_INVALID_OPCODE', `invalid opcode ${opcode}`, CloseCode.ProtocolError);
      if (!fin) return this.fail('WS_ERR_INVALID_CONTROL_FRAME', 'control frames must not be fragmented', CloseCode.ProtocolError);
    } else if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === 0) return this.fail('WS_ERR_UNEXPECTED_CONTINUATION', 'continuation frame without a message to continue', CloseCode.ProtocolError);
      if (this.messageFrames >= this.maxFragments) {
        return this.fail('WS_ERR_MESSAGE_TOO_BIG', `message in more than ${this.maxFragments} fragments`, CloseCode.MessageTooBig);
      }
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.messageOpcode !== 0) return this.fail('WS_ERR_EXPECTED_CONTINUATION', 'new message started before the fragmented one finished', CloseCode.ProtocolError);
      this.messageFrames = 0;
    } else {
      return this.fail('WS_ERR_INVALID_OPCODE', `invalid opcode ${opcode}`, CloseCode.ProtocolError);
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.expectMask) {
      return masked
        ? this.fail('WS_ERR_UNEXPECTED_MASK', 'frames from a server must not be masked', CloseCode.ProtocolError)
        : this.fail('WS_ERR_EXPECTED_MASK', 'frames from a client must be masked', CloseCode.ProtocolError);
    }
    let length = b1 & 0x7f;
    let size = 2;
    if (length === 126) {
      if (available < 4) return -1;
      length = buffer.readUInt16BE(offset + 2);
      size = 4;
    } else if (length === 127) {
      if (available < 10) return -1;
      const high = buffer.readUInt32BE(offset + 2);
      if (high & 0x80000000) return this.fail('WS_ERR_INVALID_LENGTH', 'frame length has its most significant bit set', CloseCode.ProtocolError);
      // Anything at or above 2^53 is over every possible limit; keep the number exact below it.
      length = high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 0x100000000 + buffer.readUInt32BE(offset + 6);
      size = 10;
    }
    if (opcode >= 0x8) {
      // Judged by the value: a non-minimal length encoding is accepted here as for data frames.
      if (length > 125) return this.fail('WS_ERR_INVALID_CONTROL_FRAME', 'control frame payload over 125 bytes', CloseCode.ProtocolError);
    } else {
      const total = (opcode === Opcode.Continuation ? this.messageLength : 0) + length;
      if (total > this.maxMessageSize) {
        return this.fail('WS_ERR_MESSAGE_TOO_BIG', `message of ${total} bytes is over the limit of ${this.maxMessageSize}`, CloseCode.MessageTooBig);
      }
    }
    if (masked) {
      if (available < size + 4) return -1;
      const key = (this.maskKey ??= Buffer.allocUnsafe(4));
      key[0] = buffer[offset + size]!;
      key[1] = buffer[offset + size + 1]!;
      key[2] = buffer[offset + size + 2]!;
      key[3] = buffer[offset + size + 3]!;
      size += 4;
    }
    // Counted only here, where the header is complete: a split header is parsed again.
    if (opcode < 0x8) this.messageFrames++;
    this.inPayload = true;
    this.fin = fin;
    this.opcode = opcode;
    this.masked = masked;
    this.payloadLength = length;
    this.received = 0;
    this.compressedFrame = opcode === Opcode.Continuation ? this.messageCompressed : rsv1;
    // Compressed text is validated once inflated, by the owner.
    this.textFrame = !this.compressedFrame && (opcode === Opcode.Text || (opcode === Opcode.Continuation && this.messageOpcode === Opcode.Text));
    return size;
  }

  /** A complete unfragmented data frame at `chunk[start, start + length)`. */
  private wholeMessage(chunk: Buffer, start: number, length: number): void {
    const isText = this.opcode === Opcode.Text;
    // Unmasking tells for free whether the payload is ASCII, which is valid UTF-8.
    const ascii = this.masked && length > 0 && unmaskAscii(chunk, start, length, this.maskKey!);
    const payload = length === 0 ? EMPTY : chunk.subarray(start, start + length);
    if (this.compressedFrame) {
      this.events.onCompressedFrame!(payload, true, isText);
      return;
    }
    if (isText && !ascii && !isUtf8(payload)) {
      this.fail('WS_ERR_INVALID_UTF8', 'text message is not valid UTF-8', CloseCode.InvalidPayload);
      return;
    }
    this.events.onMessage(payload, isText);
  }

  /** Take the next `piece` of the current payload; `last` when it completes the frame. */
  private payloadPiece(piece: Buffer, last: boolean): void {
    const length = piece.length;
    if (this.masked && length > 0) maskInto(piece, 0, piece, 0, length, this.keyAt(this.received));
    if (this.textFrame && !(last && this.received === 0 && this.opcode === Opcode.Text && this.fin)) {
      // Fragmented or partially arrived text: validate now so bad UTF-8 fails fast.
      const validator = (this.validator ??= new Utf8Validator());
      this.incrementalUtf8 = true;
      if (!validator.push(piece)) {
        this.fail('WS_ERR_INVALID_UTF8', 'text message is not valid UTF-8', CloseCode.InvalidPayload);
        return;
      }
    }
    this.received += length;
    if (!last) {
      if (length > 0) (this.parts ??= []).push(piece);
      return;
    }
    this.inPayload = false;
    const parts = this.parts;
    if (parts === null) {
      this.frameComplete(piece, null);
      return;
    }
    this.parts = null;
    if (length > 0) parts.push(piece);
    // Pieces are kept for a large message, or for a fragment (the message's size decides later).
    const keep = this.takesParts && this.opcode < 0x8 && (this.payloadLength >= PARTS_MIN_SIZE || !this.fin || this.messageOpcode !== 0);
    if (keep) this.frameComplete(null, parts);
    else this.frameComplete(parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.payloadLength), null);
  }

  /**
   * A frame is complete: its payload is `payload`, or (a data frame for an owner that takes
   * pieces) the non-empty `parts`.
   */
  private frameComplete(payload: Buffer | null, parts: Buffer[] | null): void {
    const opcode = this.opcode;
    if (opcode >= 0x8) {
      this.events.onControl(opcode, payload!);
      return;
    }
    if (this.compressedFrame) {
      this.compressedFrameComplete(payload ?? (parts!.length === 1 ? parts![0]! : Buffer.concat(parts!, this.payloadLength)));
      return;
    }
    if (opcode !== Opcode.Continuation) {
      if (this.fin) {
        if (parts !== null) this.deliverParts(parts, this.payloadLength, opcode === Opcode.Text);
        else this.deliver(payload!, opcode === Opcode.Text);
        return;
      }
      this.messageOpcode = opcode;
      this.fragments = [];
      this.messageLength = 0;
    }
    // The message's pieces, in order, without empty ones.
    const fragments = this.fragments!;
    if (parts !== null) {
      for (let i = 0; i < parts.length; i++) fragments.push(parts[i]!);
    } else if (payload!.length > 0) {
      fragments.push(payload!);
    }
    this.messageLength += this.payloadLength;
    if (!this.fin) return;
    const isText = this.messageOpcode === Opcode.Text;
    const length = this.messageLength;
    this.messageOpcode = 0;
    this.fragments = null;
    this.messageLength = 0;
    if (fragments.length <= 1) this.deliver(fragments.length === 0 ? EMPTY : fragments[0]!, isText);
    else if (this.takesParts && length >= PARTS_MIN_SIZE) this.deliverParts(fragments, length, isText);
    else this.deliver(Buffer.concat(fragments, length), isText);
  }

  /** A frame of a compressed message: passed on as it is, only the fragmentation state kept. */
  private compressedFrameComplete(payload: Buffer): void {
    const fin = this.fin;
    let isText: boolean;
    if (this.opcode !== Opcode.Continuation) {
      isText = this.opcode === Opcode.Text;
      if (!fin) {
        this.messageOpcode = this.opcode;
        this.messageCompressed = true;
        this.messageLength = this.payloadLength;
      }
    } else {
      isText = this.messageOpcode === Opcode.Text;
      this.messageLength += this.payloadLength;
      if (fin) {
        this.messageOpcode = 0;
        this.messageCompressed = false;
        this.messageLength = 0;
      }
    }
    this.events.onCompressedFrame!(payload, fin, isText);
  }

  private deliver(message: Buffer, isText: boolean): void {
    if (isText && !this.textEnds(message)) return;
    this.events.onMessage(message, isText);
  }

  private deliverParts(parts: Buffer[], length: number, isText: boolean): void {
    if (isText && !this.textEnds(null)) return;
    this.events.onMessageParts!(parts, length, isText);
  }

  /**
   * Whether a complete text message is valid UTF-8: checked as it arrived when it came in
   * pieces (then `message` may be null), else now. Fails the connection when it is not.
   */
  private textEnds(message: Buffer | null): boolean {
    if (this.incrementalUtf8) {
      const complete = this.validator!.complete;
      this.validator!.reset();
      this.incrementalUtf8 = false;
      if (!complete) {
        this.fail('WS_ERR_INVALID_UTF8', 'text message ends inside a UTF-8 sequence', CloseCode.InvalidPayload);
        return false;
      }
    } else if (!isUtf8(message!)) {
      this.fail('WS_ERR_INVALID_UTF8', 'text message is not valid UTF-8', CloseCode.InvalidPayload);
      return false;
    }
    return true;
  }

  /** The mask key as it applies from payload position `position` (rotated when unaligned). */
  private keyAt(position: number): Buffer {
    const key = this.maskKey!;
    const shift = position & 3;
    if (shift === 0) return key;
    const rotated = (this.rotatedKey ??= Buffer.allocUnsafe(4));
    for (let i = 0; i < 4; i++) rotated[i] = key[(i + shift) & 3]!;
    return rotated;
  }

  private fail(code: WebSocketError['code'], message: string, closeCode: number): -1 {
    this.stop();
    this.events.onError(new WebSocketError(code, message, closeCode));
    return -1;
  }
}
