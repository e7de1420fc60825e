// Byte fixtures for the protocol core tests: build frames field by field (including encodings a
// well-behaved sender never produces) and record what a parser or connection reports.

import { FrameParser, type ParserEvents } from '../../src/protocol/parser.js';
import { Connection, type Role } from '../../src/protocol/connection.js';
import type { WebSocketError } from '../../src/protocol/errors.js';

/** `hex('81 05 48 65')` -> those bytes. Whitespace is ignored. */
export function hex(text: string): Buffer {
  const clean = text.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new Error(`bad hex ${text}`);
  return Buffer.from(clean, 'hex');
}

/** Lower-case hex with no separators, for readable assertion failures. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}

export function bytes(...parts: (string | Uint8Array | number[])[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
}

export const OP = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;
export const KEY = hex('37 fa 21 3d');

export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** Masking key; `null` for an unmasked frame. Default: unmasked. */
  mask?: Uint8Array | null;
  /** How to write the length: 7-bit, 16-bit (126) or 64-bit (127). Default: minimal. */
  lengthBits?: 7 | 16 | 64;
  /** Length to declare instead of the payload's (for headers only / lying headers). */
  declaredLength?: number | bigint;
}

/** One frame as bytes, exactly as specified (the payload is masked if a key is given). */
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : Buffer.from(spec.payload ?? []);
  const fin = spec.fin ?? true;
  const length = BigInt(spec.declaredLength ?? payload.length);
  const bits = spec.lengthBits ?? (length < 126n ? 7 : length < 65536n ? 16 : 64);
  const head: number[] = [
    (fin ? 0x80 : 0) | (spec.rsv1 ? 0x40 : 0) | (spec.rsv2 ? 0x20 : 0) | (spec.rsv3 ? 0x10 : 0) | spec.opcode,
  ];
  const maskBit = spec.mask ? 0x80 : 0;
  if (bits === 7) {
    if (length > 125n) throw new Error('7-bit length over 125');
    head.push(maskBit | Number(length));
  } else if (bits === 16) {
    if (length > 0xffffn) throw new Error('16-bit length over 65535');
    head.push(maskBit | 126, Number(length >> 8n), Number(length & 0xffn));
  } else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((length >> shift) & 0xffn));
  }
  if (spec.mask) head.push(...spec.mask);
  const body = Buffer.from(payload);
  if (spec.mask) for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ spec.mask[i & 3]!;
  return Buffer.concat([Buffer.from(head), body]);
}

/** A frame as a client sends it (masked with `KEY` unless another key is given). */
export function cframe(spec: FrameSpec): Buffer {
  return frame({ mask: KEY, ...spec });
}

/** Byte-wise reference masking. */
export function referenceMask(data: Uint8Array, key: Uint8Array): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ key[i & 3]!;
  return out;
}

export type ParserEvent =
  | { type: 'message'; text: boolean; data: string }
  | { type: 'control'; opcode: number; data: string }
  | { type: 'error'; code: string; closeCode: number | undefined };

/** A parser whose events are recorded as plain values (payloads as hex, copied at once). */
/**
 * A parser that records its events. With `parts`, its events take messages in pieces
 * (`onMessageParts`); they are recorded joined, as `onMessage` would see them, after checking
 * that the pieces are non-empty, at least two, and add up to `length`.
 */
export function recordingParser(role: 'server' | 'client', maxMessageSize?: number, options: { parts?: boolean } = {}) {
  const events: ParserEvent[] = [];
  const errors: WebSocketError[] = [];
  const sink: ParserEvents = {
    onMessage: (payload, isText) => events.push({ type: 'message', text: isText, data: toHex(payload) }),
    onControl: (opcode, payload) => events.push({ type: 'control', opcode, data: toHex(payload) }),
    onError: (error) => {
      errors.push(error);
      events.push({ type: 'error', code: error.code, closeCode: error.closeCode });
    },
  };
  if (options.parts) {
    sink.onMessageParts = (parts, length, isText) => {
      if (parts.length < 2) throw new Error(`onMessageParts with ${parts.length} piece(s)`);
      if (parts.some((part) => part.length === 0)) throw new Error('onMessageParts with an empty piece');
      const joined = Buffer.concat(parts);
      if (joined.length !== length) throw new Error(`onMessageParts length ${length}, pieces ${joined.length}`);
      events.push({ type: 'message', text: isText, data: toHex(joined) });
    };
  }
  const parser = new FrameParser(sink, maxMessageSize === undefined ? { role } : { role, maxMessageSize });
  /** Push a copy (the parser unmasks in place, and fixtures are reused). */
  const push = (...chunks: Uint8Array[]) => {
    for (const chunk of chunks) parser.push(Buffer.from(chunk));
  };
  return { parser, events, errors, push };
}

export function msg(data: string | Uint8Array, text: boolean): ParserEvent {
  return { type: 'message', text, data: typeof data === 'string' ? Buffer.from(data).toString('hex') : toHex(data) };
}
export function ctl(opcode: number, data: string | Uint8Array = ''): ParserEvent {
  return { type: 'control', opcode, data: typeof data === 'string' ? Buffer.from(data).toString('hex') : toHex(data) };
}
export function err(code: string, closeCode: number): ParserEvent {
  return { type: 'error', code, closeCode };
}

/** Split `data` at the given sorted offsets. */
export function splitAt(data: Uint8Array, cuts: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    pieces.push(Buffer.from(data.subarray(from, cut)));
    from = cut;
  }
  pieces.push(Buffer.from(data.subarray(from)));
  return pieces;
}

export type ConnectionEvent =
  | { type: 'write'; data: string }
  | { type: 'message'; text: boolean; data: string }
  | { type: 'ping'; data: string }
  | { type: 'pong'; data: string }
  | { type: 'close'; code: number; reason: string; error: string | undefined; closeCode: number | undefined }
  | { type: 'closeTransport' };

/** A connection whose every event (writes included) is recorded in order. */
export function recordingConnection(role: Role, maxMessageSize?: number) {
  const events: ConnectionEvent[] = [];
  const written: Buffer[] = [];
  const conn = new Connection(
    {
      write: (data) => {
        written.push(Buffer.from(data));
        events.push({ type: 'write', data: toHex(data) });
      },
      onMessage: (payload, isText) => events.push({ type: 'message', text: isText, data: toHex(payload) }),
      onPing: (payload) => events.push({ type: 'ping', data: toHex(payload) }),
      onPong: (payload) => events.push({ type: 'pong', data: toHex(payload) }),
      onClose: (code, reason, error) =>
        events.push({ type: 'close', code, reason, error: error?.code, closeCode: error?.closeCode }),
      closeTransport: () => events.push({ type: 'closeTransport' }),
    },
    maxMessageSize === undefined ? { role } : { role, maxMessageSize },
  );
  const receive = (...chunks: Uint8Array[]) => {
    for (const chunk of chunks) conn.receive(Buffer.from(chunk));
  };
  const take = () => events.splice(0, events.length);
  return { conn, events, written, receive, take };
}

/** Decode the frames a connection wrote (for checking what a client sent, masks included). */
export function decodeFrames(data: Uint8Array): { fin: boolean; opcode: number; masked: boolean; key: string; payload: Buffer }[] {
  const out = [];
  let i = 0;
  while (i < data.length) {
    const b0 = data[i]!;
    const b1 = data[i + 1]!;
    let length = b1 & 0x7f;
    i += 2;
    if (length === 126) {
      length = (data[i]! << 8) | data[i + 1]!;
      i += 2;
    } else if (length === 127) {
      length = Number(Buffer.from(data.subarray(i, i + 8)).readBigUInt64BE(0));
      i += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? Buffer.from(data.subarray(i, i + 4)) : Buffer.alloc(0);
    if (masked) i += 4;
    let payload: Buffer = Buffer.from(data.subarray(i, i + length));
    if (masked) payload = referenceMask(payload, key);
    i += length;
    out.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, key: key.toString('hex'), payload });
  }
  return out;
}
