const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * XOR `length` bytes of `source` starting at `sourceOffset` with the 4-byte `key`, writing to
 * `target` at `targetOffset` (source and target may be the same buffer at the same offset).
 * Byte `j` of the range is XORed with `key[j & 3]`.
 *
 * The aligned middle is processed as 32-bit words. When source and target alignments differ
 * the bytes are first copied (memcpy is far cheaper than byte-wise XOR) and masked in place.
 */
export function maskInto(
  source: Uint8Array,
  sourceOffset: number,
  target: Uint8Array,
  targetOffset: number,
  length: number,
  key: Uint8Array,
): void {
  if (length < 32) {
    for (let i = 0; i < length; i++) target[targetOffset + i] = source[sourceOffset + i]! ^ key[i & 3]!;
    return;
  }
  const sourceAddress = source.byteOffset + sourceOffset;
  const targetAddress = target.byteOffset + targetOffset;
  if ((sourceAddress & 3) !== (targetAddress & 3)) {
    target.set(source.subarray(sourceOffset, sourceOffset + length), targetOffset);
    source = target;
    sourceOffset = targetOffset;
  }
  // Bring both to a 4-byte boundary so Uint32Array views line up.
  const lead = (4 - (targetAddress & 3)) & 3;
  let i = 0;
  for (; i < lead; i++) target[targetOffset + i] = source[sourceOffset + i]! ^ key[i & 3]!;
  const words = (length - i) >>> 2;
  // The key rotated so its lanes line up with bytes from `i`, in the host's byte order.
  const keyWord = LITTLE_ENDIAN
    ? (key[i & 3]! | (key[(i + 1) & 3]! << 8) | (key[(i + 2) & 3]! << 16) | (key[(i + 3) & 3]! << 24)) >>> 0
    : ((key[i & 3]! << 24) | (key[(i + 1) & 3]! << 16) | (key[(i + 2) & 3]! << 8) | key[(i + 3) & 3]!) >>> 0;
  const src32 = new Uint32Array(source.buffer, source.byteOffset + sourceOffset + i, words);
  const dst32 = src32.buffer === target.buffer && source.byteOffset + sourceOffset === target.byteOffset + targetOffset
    ? src32
    : new Uint32Array(target.buffer, target.byteOffset + targetOffset + i, words);
  for (let w = 0; w < words; w++) dst32[w] = src32[w]! ^ keyWord;
  i += words * 4;
  for (; i < length; i++) target[targetOffset + i] = source[sourceOffset + i]! ^ key[i & 3]!;
}

/** Mask (or unmask: the operation is its own inverse) `buffer` in place. */
export function maskInPlace(buffer: Uint8Array, key: Uint8Array): void {
  maskInto(buffer, 0, buffer, 0, buffer.length, key);
}
