/** Protocol Buffers wire-format primitives on plain buffers: tags, varints, lengths, strings. */

/** Wire types, and a field's tag (field number << 3 | wire type). */
export const LEN = 2;
export const tag = (field: number, wire: number): number => (field << 3) | wire;
export const VARINT = 0;
export const I64 = 1;
export const I32 = 5;

/** The size of a string field (field number < 16) when present. */
export function optionalStringSize(s: string | undefined): number {
  if (!s) return 0;
  const len = Buffer.byteLength(s, 'utf8');
  return 1 + varintSize(len) + len;
}

export function putString(buf: Buffer, at: number, field: number, s: string): number {
  buf[at++] = tag(field, LEN);
  at = putVarint(buf, at, Buffer.byteLength(s, 'utf8'));
  return at + buf.write(s, at, 'utf8');
}

export function copyInto(buf: Buffer, at: number, b: Buffer): number {
  buf.set(b, at);
  return at + b.length;
}

/** Strings up to this long are copied char by char while they prove ASCII. */
export const SHORT_STRING = 64;

export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

export function lengthDelimited(field: number, content: Buffer): Buffer {
  const head = Buffer.allocUnsafe(11);
  head[0] = tag(field, LEN);
  return Buffer.concat([head.subarray(0, putVarint(head, 1, content.length)), content]);
}

/** Writes `v` (up to 53 bits: no bit operator, which would truncate to 32) at `at`; returns where it ends. */
export function putVarint(buf: Uint8Array, at: number, v: number): number {
  while (v >= 0x80) {
    buf[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[at++] = v;
  return at;
}

/** The last second split by `putFixed64Nanos`: the times of a batch's spans and events share a few seconds. */
let splitSec = -1;
let splitHigh = 0;
let splitLow = 0;

/**
 * fixed64 nanoseconds of `sec` seconds and `ns` nanoseconds at `at`, exact and without a bigint: seconds × 1e9
 * passes 2^53, so the product is taken in 16-bit pieces whose partial sums stay exact, and split into its 32-bit
 * halves (kept for the next time of the same second); the nanoseconds are added with a carry. Returns where it ends.
 */
export function putFixed64Nanos(buf: Buffer, at: number, sec: number, ns: number): number {
  if (sec !== splitSec) {
    const s = sec >>> 0;
    const a = (s & 0xffff) * 1e9;
    const b = (s >>> 16) * 1e9;
    const bLow = b % 0x10000;
    const c = bLow * 0x10000 + a;
    splitLow = c % 0x1_0000_0000;
    splitHigh = (b - bLow) / 0x10000 + (c - splitLow) / 0x1_0000_0000;
    splitSec = sec;
  }
  let low = splitLow + ns;
  let high = splitHigh;
  if (low >= 0x1_0000_0000) {
    low -= 0x1_0000_0000;
    high++;
  }
  return putFixed32(buf, putFixed32(buf, at, low), high);
}

/** A little-endian uint32 at `at`, byte by byte (`writeUInt32LE` checks its arguments on every call). */
export function putFixed32(buf: Uint8Array, at: number, v: number): number {
  buf[at] = v & 0xff;
  buf[at + 1] = (v >>> 8) & 0xff;
  buf[at + 2] = (v >>> 16) & 0xff;
  buf[at + 3] = (v >>> 24) & 0xff;
  return at + 4;
}

/** Each ASCII code's hex digit value; 0 for anything else (ids are valid hex: the SDK and our ids make them so). */
const HEX_VALUE = new Uint8Array(256);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[0x41 + i] = HEX_VALUE[0x61 + i] = 10 + i;

/**
 * The bytes of `hex` at `at`, always `hex.length / 2` of them, as the field's length says (the SDK's `hexToBinary`
 * does the same); `Buffer.write(hex, 'hex')` would cross into C++ for every trace and span id. Returns where it ends.
 */
export function putHex(buf: Uint8Array, at: number, hex: string): number {
  const n = hex.length >>> 1;
  for (let i = 0; i < n; i++)
    buf[at + i] =
      (HEX_VALUE[hex.charCodeAt(2 * i) & 0xff]! << 4) | HEX_VALUE[hex.charCodeAt(2 * i + 1) & 0xff]!;
  return at + n;
}
