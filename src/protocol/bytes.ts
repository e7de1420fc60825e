import { WebSocketError } from './errors.js';

/** Bytes in any of the forms Node code holds them: sent as they are, never copied. */
export type BinaryPayload = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

const objectTag = (value: unknown): string => Object.prototype.toString.call(value);

/**
 * `bytes` as a Buffer over the same memory (no copy), whatever form they come in: a Buffer,
 * any TypedArray, a DataView, an ArrayBuffer or a SharedArrayBuffer (or a view on one).
 * Anything else throws `WS_ERR_INVALID_ARGUMENT`, so a caller can check a payload before it
 * commits a byte of a frame. The one conversion every send path uses.
 */
export function toBuffer(bytes: unknown): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (ArrayBuffer.isView(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // By tag rather than instanceof, so buffers from another realm (vm, worker) are taken too.
  const tag = objectTag(bytes);
  if (tag === '[object ArrayBuffer]' || tag === '[object SharedArrayBuffer]') return Buffer.from(bytes as ArrayBuffer);
  throw new WebSocketError(
    'WS_ERR_INVALID_ARGUMENT',
    `cannot send ${describe(bytes)}: expected a string, a Message, a Buffer, a TypedArray, a DataView, an ArrayBuffer or a SharedArrayBuffer`,
  );
}

/** Whether `value` is a `Blob` (or a `File`), which must be read before it can be framed. */
export function isBlob(value: unknown): value is Blob {
  return typeof Blob === 'function' && value instanceof Blob;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return objectTag(value).slice(8, -1);
}
