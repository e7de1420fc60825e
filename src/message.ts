import { isUtf8 } from 'node:buffer';
import { WebSocketError } from './protocol/errors.js';
import { toBuffer, type BinaryPayload } from './protocol/bytes.js';

export { toBuffer, isBlob, type BinaryPayload } from './protocol/bytes.js';
import { encodeShared, Opcode, type SharedFrame } from './protocol/frame.js';

/**
 * One WebSocket message: text or binary. Text keeps whichever form it was made from (a string
 * or UTF-8 bytes) and produces the other only when asked, so echoing received text never
 * decodes it.
 */
export class Message {
  /** True for a text message, false for binary. */
  readonly isText: boolean;
  private payload: Buffer | undefined;
  private string: string | undefined;
  /** A received message that arrived in pieces, until something needs it in one buffer. */
  private parts: Buffer[] | undefined;
  /**
   * The unmasked frame for this message: `undefined` until a server sent it, `null` after one
   * send, then the frame, built on the second send and shared by every later one (a message
   * sent to many connections is framed once).
   */
  private serverFrame: SharedFrame | null | undefined = undefined;

  private constructor(isText: boolean, payload: Buffer | undefined, string: string | undefined, parts?: Buffer[]) {
    this.isText = isText;
    this.payload = payload;
    this.string = string;
    this.parts = parts;
  }

  /** A message from a string (text) or bytes (text when they are valid UTF-8, else binary). */
  static new(payload: string | BinaryPayload): Message {
    if (typeof payload === 'string') return new Message(true, undefined, payload);
    const bytes = toBuffer(payload);
    return new Message(isUtf8(bytes), bytes, undefined);
  }

  /** A text message. Bytes are accepted only if they are valid UTF-8. */
  static text(text: string | BinaryPayload): Message {
    if (typeof text === 'string') return new Message(true, undefined, text);
    const bytes = toBuffer(text);
    if (!isUtf8(bytes)) throw new WebSocketError('WS_ERR_INVALID_UTF8', 'text message bytes are not valid UTF-8');
    return new Message(true, bytes, undefined);
  }

  /** A binary message. The bytes are not copied. */
  static binary(bytes: BinaryPayload | string): Message {
    return new Message(false, typeof bytes === 'string' ? Buffer.from(bytes) : toBuffer(bytes), undefined);
  }

  /** @internal A received message; the payload was validated already. */
  static fromReceived(payload: Buffer, isText: boolean): Message {
    return new Message(isText, payload, undefined, undefined);
  }

  /**
   * @internal A received message that arrived in pieces (validated already). They are joined
   * only when the bytes are asked for; sending it on writes the pieces as they are.
   */
  static fromReceivedParts(parts: Buffer[], isText: boolean): Message {
    return new Message(isText, undefined, undefined, parts);
  }

  /** @internal The pieces of a received message not joined yet, else undefined. */
  unjoinedParts(): Buffer[] | undefined {
    return this.parts;
  }

  /**
   * The message as a string. For binary messages the bytes must be valid UTF-8, otherwise this
   * throws `WS_ERR_INVALID_UTF8`.
   */
  text(): string {
    if (this.string === undefined) {
      const bytes = this.bytes();
      if (!this.isText && !isUtf8(bytes)) throw new WebSocketError('WS_ERR_INVALID_UTF8', 'binary message is not valid UTF-8');
      this.string = bytes.toString('utf8');
    }
    return this.string;
  }

  /** The payload bytes (UTF-8 for text). Not a copy: do not modify it. */
  bytes(): Buffer {
    return (this.payload ??= this.join());
  }

  private join(): Buffer {
    const parts = this.parts;
    if (parts === undefined) return Buffer.from(this.string!, 'utf8');
    this.parts = undefined;
    return Buffer.concat(parts);
  }

  /**
   * @internal The frame a server sends for this message, or `null` the first time it is asked
   * (a message sent once is encoded straight into the connection's output instead).
   */
  frameForServer(): SharedFrame | null {
    const frame = this.serverFrame;
    if (frame !== undefined && frame !== null) return frame;
    if (frame === undefined) {
      this.serverFrame = null;
      return null;
    }
    return (this.serverFrame = encodeShared(this.isText ? Opcode.Text : Opcode.Binary, this.bytes()));
  }

  /** Payload size in bytes. */
  get byteLength(): number {
    if (this.payload !== undefined) return this.payload.length;
    const parts = this.parts;
    if (parts === undefined) return Buffer.byteLength(this.string!);
    let length = 0;
    for (let i = 0; i < parts.length; i++) length += parts[i]!.length;
    return length;
  }

  toString(): string {
    return this.isText ? this.text() : `[binary message of ${this.bytes().length} bytes]`;
  }
}

/** What `send` accepts: a Message, a string (text) or bytes in any `BinaryPayload` form (binary). */
export type MessageLike = Message | string | BinaryPayload;


