/**
 * A protobuf writer on one growing buffer, reused: fields of every wire type, and length-delimited fields written in
 * place after a one-byte length placeholder, moved by the extra length bytes once closed when longer than 127 bytes
 * (one `copyWithin`, no second pass). The OTLP encoder extends it.
 */
import type { HrTime } from '@opentelemetry/api';
import {
  I32,
  I64,
  LEN,
  putFixed32,
  putFixed64Nanos,
  putHex,
  putVarint,
  SHORT_STRING,
  tag,
  VARINT,
  varintSize,
} from './protobuf-wire.js';

export class ProtobufWriter {
  protected _buf: Buffer = Buffer.allocUnsafe(1 << 16);
  protected _pos = 0;

  protected _ensure(n: number): void {
    if (this._pos + n <= this._buf.length) return;
    let size = this._buf.length * 2;
    while (size < this._pos + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this._buf.copy(bigger, 0, 0, this._pos);
    this._buf = bigger;
  }

  /** Starts a length-delimited field: its tag and a one-byte length placeholder; returns where its content starts. */
  protected _open(field: number): number {
    this._ensure(6);
    this._varint(tag(field, LEN));
    this._buf[this._pos++] = 0;
    return this._pos;
  }

  /** Ends the field opened at `start`: its length in place, the content moved when that takes more than a byte. */
  protected _close(start: number): void {
    const len = this._pos - start;
    if (len < 0x80) {
      this._buf[start - 1] = len;
      return;
    }
    const extra = varintSize(len) - 1;
    this._ensure(extra);
    this._buf.copyWithin(start + extra, start, this._pos);
    this._pos += extra;
    putVarint(this._buf, start - 1, len);
  }

  protected _varint(v: number): void {
    this._pos = putVarint(this._buf, this._pos, v);
  }

  /** A varint field, left out when 0 (proto3's default) unless `always`. */
  protected _varintField(field: number, v: number, always = false): void {
    if (v === 0 && !always) return;
    this._ensure(16);
    this._varint(tag(field, VARINT));
    this._varint(v);
  }

  /** int64: negative values take ten bytes, two's complement. */
  protected _int64(field: number, v: number): void {
    this._ensure(16);
    this._varint(tag(field, VARINT));
    if (v >= 0) return this._varint(v);
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this._buf[this._pos++] = Number(n & 0x7fn) | 0x80;
      n >>= 7n;
    }
    this._buf[this._pos++] = Number(n);
  }

  protected _double(field: number, v: number): void {
    this._ensure(12);
    this._varint(tag(field, I64));
    this._pos = this._buf.writeDoubleLE(v, this._pos);
  }

  protected _fixed32(field: number, v: number): void {
    this._ensure(8);
    this._varint(tag(field, I32));
    this._pos = putFixed32(this._buf, this._pos, v >>> 0);
  }

  protected _time(field: number, t: HrTime): void {
    this._ensure(12);
    this._varint(tag(field, I64));
    this._pos = putFixed64Nanos(this._buf, this._pos, t[0], t[1]);
  }

  protected _string(field: number, s: string): void {
    // A UTF-16 unit takes at most 3 bytes of UTF-8.
    this._ensure(3 * s.length + 10);
    this._varint(tag(field, LEN));
    if (s.length <= SHORT_STRING) {
      const start = this._pos;
      this._buf[this._pos++] = s.length;
      if (this._ascii(s)) return;
      this._pos = start;
    }
    this._varint(Buffer.byteLength(s, 'utf8'));
    this._pos += this._buf.write(s, this._pos, 'utf8');
  }

  /** An id given in hex, as bytes (the SDK's encoding of trace and span ids). */
  protected _hex(field: number, hex: string): void {
    const len = hex.length >>> 1;
    this._ensure(len + 4);
    this._varint(tag(field, LEN));
    this._varint(len);
    this._pos = putHex(this._buf, this._pos, hex);
  }

  /** Short keys are copied byte by byte: `set` costs more than the copy for a few bytes. */
  protected _bytes(b: Buffer): void {
    const n = b.length;
    this._ensure(n);
    const buf = this._buf;
    const at = this._pos;
    if (n > 32) buf.set(b, at);
    else for (let i = 0; i < n; i++) buf[at + i] = b[i]!;
    this._pos = at + n;
  }
  /**
   * `s` copied char by char, cheaper than a call into the UTF-8 encoder for a few bytes, as long as it is ASCII;
   * false at the first char that is not (what was copied is then to be overwritten).
   */
  protected _ascii(s: string): boolean {
    const buf = this._buf;
    let at = this._pos;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return false;
      buf[at++] = c;
    }
    this._pos = at;
    return true;
  }
}
