/**
 * H2O copies header bytes >= 0x80 into its JSON lines raw, so a line can be invalid UTF-8. Decoding such a line
 * as UTF-8 would silently turn those bytes into U+FFFD; we keep them visible as the text `\xNN` instead.
 */
import { isUtf8 } from 'node:buffer';

const HEX = '0123456789abcdef';

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
function sequenceLength(buf: Uint8Array, i: number, end: number): number {
  const b0 = buf[i]!;
  let len: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [len, min] = [2, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [len, min] = [3, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [len, min] = [4, 0x10000];
  else return 0;
  if (i + len > end) return 0;
  let cp = b0 & (0xff >> (len + 1));
  for (let k = 1; k < len; k++) {
    const b = buf[i + k]!;
    if ((b & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/**
 * Decode `buf` as UTF-8; bytes that are not part of a valid sequence become the four characters `\xNN`. For JSON
 * text (`inJson`) the backslash is written escaped, so that the JSON string they sit in decodes to exactly that.
 * `escaped` says whether any byte was replaced.
 */
export function decodeUtf8Escaping(buf: Buffer, inJson = true): { text: string; escaped: boolean } {
  if (isUtf8(buf)) return { text: buf.toString('utf8'), escaped: false };
  const backslash = inJson ? '\\\\x' : '\\x';
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  const end = buf.length;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = sequenceLength(buf, i, end);
    if (len > 0) {
      i += len;
      continue;
    }
    if (i > start) parts.push(buf.toString('utf8', start, i));
    parts.push(backslash + HEX[b >> 4]! + HEX[b & 15]!);
    i++;
    start = i;
  }
  if (start < end) parts.push(buf.toString('utf8', start, end));
  return { text: parts.join(''), escaped: true };
}
