const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Ranges shorter than this are masked byte by byte: setting up word access costs more. */
const WORD_THRESHOLD = 24;
/** The same for `unmaskAscii`, whose word path has less to set up. */
const ASCII_WORD_THRESHOLD = 8;
/** ArrayBuffers up to this size keep their word view cached (see `wordsOf`). */
const CACHE_LIMIT = 256 * 1024;

// Making a typed array view costs about as much as masking 100 bytes, so the word view of the
// last ArrayBuffer is kept: the frames of one socket read all live in the same ArrayBuffer and
// share one view. Only small buffers are cached, so at most CACHE_LIMIT bytes stay referenced.
let cachedBuffer: ArrayBufferLike | null = null;
let cachedWords: Int32Array | null = null;

// The same for the last view passed to `unmaskAscii` (the read buffer the parser walks):
// reading a view's `buffer` is not inlined by V8 and costs as much as masking 30 bytes.
let cachedView: Uint8Array | null = null;
let cachedViewWords: Int32Array | null = null;
let cachedViewOffset = 0;

/** An Int32Array over the whole of `buffer` (word `w` is bytes `4w..4w+3`). */
function wordsOf(buffer: ArrayBufferLike): Int32Array {
  if (buffer === cachedBuffer) return cachedWords!;
  const words = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
  if (buffer.byteLength <= CACHE_LIMIT) {
    cachedBuffer = buffer;
    cachedWords = words;
  }
  return words;
}

/**
 * XOR `length` bytes of `source` starting at `sourceOffset` with the 4-byte `key`, writing to
 * `target` at `targetOffset` (source and target may be the same buffer at the same offset).
 * Byte `j` of the range is XORed with `key[j & 3]`.
 *
 * The aligned middle is processed as 32-bit words through one view of the whole ArrayBuffer.
 * Into another buffer, the bytes are first copied (memcpy is far cheaper than byte-wise XOR)
 * and then masked in place.
 */
export function maskInto(
  source: Uint8Array,
  sourceOffset: number,
  target: Uint8Array,
  targetOffset: number,
  length: number,
  key: Uint8Array,
): void {
  if (length < WORD_THRESHOLD) {
    const k0 = key[0]!;
    const k1 = key[1]!;
    const k2 = key[2]!;
    const k3 = key[3]!;
    let i = 0;
    for (; i + 3 < length; i += 4) {
      target[targetOffset + i] = source[sourceOffset + i]! ^ k0;
      target[targetOffset + i + 1] = source[sourceOffset + i + 1]! ^ k1;
      target[targetOffset + i + 2] = source[sourceOffset + i + 2]! ^ k2;
      target[targetOffset + i + 3] = source[sourceOffset + i + 3]! ^ k3;
    }
    for (; i < length; i++) target[targetOffset + i] = source[sourceOffset + i]! ^ key[i & 3]!;
    return;
  }
  if (source !== target || sourceOffset !== targetOffset) {
    target.set(source.subarray(sourceOffset, sourceOffset + length), targetOffset);
  }
  maskWords(target, targetOffset, length, key);
}

/** Mask `length` (at least 4) bytes of `bytes` at `offset` in place, mostly as 32-bit words. */
function maskWords(bytes: Uint8Array, offset: number, length: number, key: Uint8Array): void {
  const address = bytes.byteOffset + offset;
  // Bytes before the first 4-byte boundary.
  const lead = (4 - (address & 3)) & 3;
  let i = 0;
  for (; i < lead; i++) bytes[offset + i] ^= key[i & 3]!;
  // The key rotated so its lanes line up with bytes from `i`, in the host's byte order.
  const keyWord = LITTLE_ENDIAN
    ? key[i & 3]! | (key[(i + 1) & 3]! << 8) | (key[(i + 2) & 3]! << 16) | (key[(i + 3) & 3]! << 24)
    : (key[i & 3]! << 24) | (key[(i + 1) & 3]! << 16) | (key[(i + 2) & 3]! << 8) | key[(i + 3) & 3]!;
  const words = wordsOf(bytes.buffer);
  const first = (address + i) >>> 2;
  const end = first + ((length - i) >>> 2);
  let w = first;
  // Unrolled: V8 runs this about twice as fast as the one-word loop.
  for (; w + 7 < end; w += 8) {
    words[w] ^= keyWord;
    words[w + 1] ^= keyWord;
    words[w + 2] ^= keyWord;
    words[w + 3] ^= keyWord;
    words[w + 4] ^= keyWord;
    words[w + 5] ^= keyWord;
    words[w + 6] ^= keyWord;
    words[w + 7] ^= keyWord;
  }
  for (; w < end; w++) words[w] ^= keyWord;
  i += (end - first) << 2;
  for (; i < length; i++) bytes[offset + i] ^= key[i & 3]!;
}

/**
 * Unmask `length` bytes of `bytes` at `offset` in place, as `maskInto` does, and tell whether
 * every unmasked byte is ASCII (below 0x80). Text that is all ASCII is valid UTF-8, so a
 * receiver learns that for free while unmasking.
 */
export function unmaskAscii(bytes: Uint8Array, offset: number, length: number, key: Uint8Array): boolean {
  const k0 = key[0]!;
  const k1 = key[1]!;
  const k2 = key[2]!;
  const k3 = key[3]!;
  let seen = 0;
  if (length < ASCII_WORD_THRESHOLD) {
    let i = 0;
    for (; i + 3 < length; i += 4) {
      seen |= bytes[offset + i] = bytes[offset + i]! ^ k0;
      seen |= bytes[offset + i + 1] = bytes[offset + i + 1]! ^ k1;
      seen |= bytes[offset + i + 2] = bytes[offset + i + 2]! ^ k2;
      seen |= bytes[offset + i + 3] = bytes[offset + i + 3]! ^ k3;
    }
    for (; i < length; i++) seen |= bytes[offset + i] = bytes[offset + i]! ^ key[i & 3]!;
    return seen < 0x80;
  }
  let words: Int32Array;
  let base: number;
  if (bytes === cachedView) {
    words = cachedViewWords!;
    base = cachedViewOffset;
  } else {
    const buffer = bytes.buffer;
    words = wordsOf(buffer);
    base = bytes.byteOffset;
    if (buffer.byteLength <= CACHE_LIMIT) {
      cachedView = bytes;
      cachedViewWords = words;
      cachedViewOffset = base;
    }
  }
  const address = base + offset;
  const lead = (4 - (address & 3)) & 3;
  let i = 0;
  for (; i < lead; i++) seen |= bytes[offset + i] = bytes[offset + i]! ^ key[i & 3]!;
  const keyWord = LITTLE_ENDIAN
    ? key[i & 3]! | (key[(i + 1) & 3]! << 8) | (key[(i + 2) & 3]! << 16) | (key[(i + 3) & 3]! << 24)
    : (key[i & 3]! << 24) | (key[(i + 1) & 3]! << 16) | (key[(i + 2) & 3]! << 8) | key[(i + 3) & 3]!;
  const first = (address + i) >>> 2;
  const end = first + ((length - i) >>> 2);
  let seenWords = 0;
  let w = first;
  for (; w + 3 < end; w += 4) {
    seenWords |= words[w] = words[w]! ^ keyWord;
    seenWords |= words[w + 1] = words[w + 1]! ^ keyWord;
    seenWords |= words[w + 2] = words[w + 2]! ^ keyWord;
    seenWords |= words[w + 3] = words[w + 3]! ^ keyWord;
  }
  for (; w < end; w++) seenWords |= words[w] = words[w]! ^ keyWord;
  i += (end - first) << 2;
  for (; i < length; i++) seen |= bytes[offset + i] = bytes[offset + i]! ^ key[i & 3]!;
  return seen < 0x80 && (seenWords & 0x80808080) === 0;
}
