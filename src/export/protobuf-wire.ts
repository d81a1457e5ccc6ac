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

/** Strings up to this long are scanned for ASCII and copied char by char. */
const SHORT_STRING = 64;

export function isShortAscii(s: string): boolean {
  if (s.length > SHORT_STRING) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

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

/**
 * fixed64 nanoseconds of `sec` seconds and `ns` nanoseconds at `at`, exact and without a bigint: seconds × 1e9
 * passes 2^53, so the product is taken in 16-bit pieces whose partial sums stay exact, and split into its 32-bit
 * halves. Returns where it ends.
 */
export function putFixed64Nanos(buf: Buffer, at: number, sec: number, ns: number): number {
  const s = sec >>> 0;
  const a = (s & 0xffff) * 1e9 + ns;
  const b = (s >>> 16) * 1e9;
  const bLow = b % 0x10000;
  const c = bLow * 0x10000 + a;
  const low = c % 0x1_0000_0000;
  const high = (b - bLow) / 0x10000 + (c - low) / 0x1_0000_0000;
  return buf.writeUInt32LE(high, buf.writeUInt32LE(low, at));
}
