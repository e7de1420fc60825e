import { maskInto } from './mask.js';
import { toBuffer } from './bytes.js';
import { WebSocketError } from './errors.js';

/** Frame opcodes of RFC 6455 section 5.2. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Close codes used by this library (RFC 6455 section 7.4.1). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  NoStatus: 1005,
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
} as const;

/**
 * Whether `code` may appear in a close frame on the wire. 1004-1006 and 1015 are reserved
 * (1005/1006/1015 are only for reporting), 1016-2999 are unassigned, 3000-4999 belong to
 * libraries and applications.
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999);
}

/** The largest header: 2 bytes + 8 bytes of length + 4 bytes of mask. */
export const MAX_HEADER_SIZE = 14;

/** Size of the header for a payload of `length` bytes. */
export function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 65536 ? 4 : 10) + (masked ? 4 : 0);
}

/** Write a frame header at `target[offset]`; returns the offset just past it. */
export function writeHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  length: number,
  fin: boolean,
  rsv1: boolean,
  maskKey: Uint8Array | undefined,
): number {
  target[offset++] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = maskKey ? 0x80 : 0;
  if (length < 126) {
    target[offset++] = maskBit | length;
  } else if (length < 65536) {
    target[offset++] = maskBit | 126;
    target[offset++] = length >>> 8;
    target[offset++] = length & 0xff;
  } else {
    target[offset++] = maskBit | 127;
    const high = Math.floor(length / 0x100000000);
    const low = length >>> 0;
    target[offset++] = 0;
    target[offset++] = 0;
    target[offset++] = (high >>> 8) & 0xff;
    target[offset++] = high & 0xff;
    target[offset++] = low >>> 24;
    target[offset++] = (low >>> 16) & 0xff;
    target[offset++] = (low >>> 8) & 0xff;
    target[offset++] = low & 0xff;
  }
  if (maskKey) {
    target[offset++] = maskKey[0]!;
    target[offset++] = maskKey[1]!;
    target[offset++] = maskKey[2]!;
    target[offset++] = maskKey[3]!;
  }
  return offset;
}

/** Payloads up to this size are copied behind their header so the frame is one buffer. */
export const COPY_THRESHOLD = 16 * 1024;

export interface FrameOptions {
  fin?: boolean;
  rsv1?: boolean;
  /** A 4-byte masking key: required for frames a client sends, forbidden for a server's. */
  maskKey?: Uint8Array | undefined;
}

/**
 * Encode one frame. Small payloads are returned as a single buffer (header + payload); large
 * unmasked ones as `[header, payload]` so the payload is never copied (write both while the
 * socket is corked so they leave together). The payload is never modified.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, options: FrameOptions = {}): Buffer[] {
  const { fin = true, rsv1 = false, maskKey } = options;
  const length = payload.length;
  const size = headerSize(length, maskKey !== undefined);
  if (maskKey || length <= COPY_THRESHOLD) {
    const frame = Buffer.allocUnsafe(size + length);
    writeHeader(frame, 0, opcode, length, fin, rsv1, maskKey);
    if (maskKey) maskInto(payload, 0, frame, size, length, maskKey);
    else frame.set(payload, size);
    return [frame];
  }
  const header = Buffer.allocUnsafe(size);
  writeHeader(header, 0, opcode, length, fin, rsv1, undefined);
  return [header, toBuffer(payload)];
}

const sharedFrameToken = Symbol('humphrey-ws shared frame');

/**
 * One complete unmasked frame, encoded once by `encodeShared` and then sent as it is by any
 * number of server connections (`Connection.sendShared`): a broadcast, a heartbeat ping. Only
 * `encodeShared` makes one, so its payload was checked before any connection queues a byte.
 */
export class SharedFrame {
  /** The frame's opcode (text, binary, ping or pong). */
  readonly opcode: number;
  /** The frame: header and payload in one buffer. Never modified. */
  readonly bytes: Buffer;

  /** @internal Use `encodeShared`. */
  constructor(token: symbol, opcode: number, bytes: Buffer) {
    if (token !== sharedFrameToken) throw new TypeError('a SharedFrame is made by encodeShared');
    this.opcode = opcode;
    this.bytes = bytes;
  }

  /** Whether this is a control frame (a ping or a pong), which may go inside a fragmented message. */
  get isControl(): boolean {
    return (this.opcode & 0x08) !== 0;
  }
}

/**
 * Encode one frame for many server connections: a whole text or binary message, or a ping or
 * pong. Throws `WS_ERR_INVALID_ARGUMENT` for another opcode (a close goes through each
 * connection's `close`), a payload that is not bytes, or a control payload over 125 bytes.
 */
export function encodeShared(opcode: number, payload: Uint8Array): SharedFrame {
  if (opcode !== Opcode.Text && opcode !== Opcode.Binary && opcode !== Opcode.Ping && opcode !== Opcode.Pong) {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', `opcode ${opcode} cannot be a shared frame`);
  }
  if (!(payload instanceof Uint8Array)) {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'a frame payload must be a Uint8Array');
  }
  if ((opcode & 0x08) !== 0 && payload.length > 125) {
    throw new WebSocketError('WS_ERR_INVALID_ARGUMENT', 'control frame payload over 125 bytes');
  }
  const parts = encodeFrame(opcode, payload);
  const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, parts[0]!.length + parts[1]!.length);
  return new SharedFrame(sharedFrameToken, opcode, bytes);
}

/** Encode the payload of a close frame: the code in network order, then the UTF-8 reason. */
export function encodeClosePayload(code: number | undefined, reason = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const reasonLength = Buffer.byteLength(reason);
  const payload = Buffer.allocUnsafe(2 + reasonLength);
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}
