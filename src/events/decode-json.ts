/**
 * h2olog JSON lines → ProbeEvents. Accepts the current socket format (`module`, `type`, `tid`, `time`, fields)
 * and the old BPF h2olog format (`type` and field names with `-`, a `seq` counter, no `module`).
 * Robust to what real H2O writes: raw bytes >= 0x80, integers above 2^53, very long lines, and lines glued or cut
 * by a partial write. A bad line is counted and skipped; it never stops the stream.
 */
import { H2O_POINTS, LEGACY_FIELD_RENAMES, PICOTLS_POINTS } from './catalogue.js';
import { USDT_TO_LOG_NAME } from './usdt-probes.js';
import { COMMON_KEYS } from './types.js';
import { LineShortcuts, UNUSED_EVENT, UNUSED_HEADER } from './line-shortcuts.js';
import type { DecodeStats, FieldSubset, FieldUse, FieldValue, HeaderUse, ProbeEvent } from './types.js';
import { decodeUtf8Escaping } from './utf8.js';

const NEWLINE = 0x0a;
const INTEGER_AT = /^\s*(-?\d+)\s*(?:[,}]|$)/;

export interface JsonDecoderOptions {
  /** Lines longer than this are dropped and counted (`tooLong`). H2O lines reach ~100 KiB with big headers. */
  readonly maxLineBytes: number;
  /** Clock for lines without `time` (the 2024 v1 socket format); injectable for tests. */
  readonly now?: () => number;
  /**
   * Whether a header with this name can change a span. Header lines of other names (most of a browser's request
   * headers) are counted as events (`unusedHeaders`) without being parsed; without it every line is parsed.
   */
  readonly usesHeader?: HeaderUse;
  /** Points of which only some events change a span: lines of the others are counted (`unusedEvents`), not parsed. */
  readonly fieldUses?: readonly FieldUse[];
  /** Points of which spans read only some fields: just those are read, in place. */
  readonly fieldSubsets?: readonly FieldSubset[];
}

export class JsonLineDecoder {
  private _pending: Buffer[] = [];
  private _pendingBytes = 0;
  private _discarding = false;
  private readonly _now: () => number;
  private readonly _shortcuts: LineShortcuts | undefined;

  constructor(
    private readonly _opts: JsonDecoderOptions,
    readonly stats: DecodeStats,
  ) {
    this._now = _opts.now ?? Date.now;
    const shortcuts = new LineShortcuts(_opts);
    this._shortcuts = shortcuts.empty ? undefined : shortcuts;
  }

  /** Decode every complete line in `chunk`, appending events to `out`. Keeps a trailing partial line. */
  push(chunk: Buffer, out: ProbeEvent[]): void {
    let start = 0;
    if (this._pendingBytes > 0 || this._discarding) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl < 0) {
        this._appendPending(chunk);
        return;
      }
      this._appendPending(chunk.subarray(0, nl));
      if (this._discarding) this._discarding = false;
      else this._line(Buffer.concat(this._pending, this._pendingBytes), out);
      this._pending = [];
      this._pendingBytes = 0;
      start = nl + 1;
    }
    const last = chunk.lastIndexOf(NEWLINE);
    if (last >= start) {
      this._lines(chunk, start, last, out);
      start = last + 1;
    }
    if (start < chunk.length) this._appendPending(chunk.subarray(start));
  }

  /** The stream ended: a trailing line without newline is decoded if it is complete JSON, else counted. */
  end(out: ProbeEvent[]): void {
    if (this._pendingBytes > 0 && !this._discarding) {
      this._line(Buffer.concat(this._pending, this._pendingBytes), out);
    }
    this._pending = [];
    this._pendingBytes = 0;
    this._discarding = false;
  }

  private _appendPending(part: Buffer): void {
    if (this._discarding) return;
    if (this._pendingBytes + part.length > this._opts.maxLineBytes) {
      this.stats.lines++;
      this.stats.tooLong++;
      this._discarding = true;
      this._pending = [];
      this._pendingBytes = 0;
      return;
    }
    // Copy: the socket may reuse the chunk's memory.
    this._pending.push(Buffer.from(part));
    this._pendingBytes += part.length;
  }

  /**
   * The complete lines in `chunk[start, end)`. Valid UTF-8 (nearly always) is decoded once for all of them and
   * split as text, so a line costs no Buffer view and no native call of its own.
   */
  private _lines(chunk: Buffer, start: number, end: number, out: ProbeEvent[]): void {
    const text = chunk.toString('utf8', start, end);
    // Bytes that are not UTF-8 decode to U+FFFD, so only a text with one (or a genuine U+FFFD) needs the careful
    // pass that keeps them as \xNN. The search is free on ASCII text, which V8 stores one byte per character.
    if (text.includes('\uFFFD')) {
      for (let s = start; s <= end;) {
        const nl = chunk.indexOf(NEWLINE, s);
        const e = nl < 0 || nl > end ? end : nl;
        this._line(chunk.subarray(s, e), out);
        s = e + 1;
      }
      return;
    }
    const max = this._opts.maxLineBytes;
    for (let s = 0; s <= text.length;) {
      let e = text.indexOf('\n', s);
      if (e < 0) e = text.length;
      let len = e - s;
      if (len > 0 && text.charCodeAt(e - 1) === 0x0d) len--;
      if (len > 0) {
        // A UTF-16 unit is at most 3 UTF-8 bytes: count the bytes only when that bound is over the limit.
        if (len * 3 > max && Buffer.byteLength(text.slice(s, s + len)) > max) {
          this.stats.lines++;
          this.stats.tooLong++;
        } else if (!this._shortcut(text, s, s + len, out)) {
          this._text(text.slice(s, s + len), out);
        }
      }
      s = e + 1;
    }
  }

  /** One line from the pending bytes or a chunk that is not all UTF-8. */
  private _line(raw: Buffer, out: ProbeEvent[]): void {
    let end = raw.length;
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    if (end === 0) return;
    if (end > this._opts.maxLineBytes) {
      this.stats.lines++;
      this.stats.tooLong++;
      return;
    }
    const { text, escaped } = decodeUtf8Escaping(end === raw.length ? raw : raw.subarray(0, end));
    if (escaped) this.stats.nonUtf8Lines++;
    if (!this._shortcut(text, 0, text.length, out)) this._text(text, out);
  }

  /** `text[from, to)` read in place (see `LineShortcuts`): counted, or its event appended. False: parse it. */
  private _shortcut(text: string, from: number, to: number, out: ProbeEvent[]): boolean {
    const got = this._shortcuts?.read(text, from, to);
    if (got === undefined) return false;
    this.stats.lines++;
    this.stats.events++;
    if (got === UNUSED_HEADER) this.stats.unusedHeaders++;
    else if (got === UNUSED_EVENT) this.stats.unusedEvents++;
    else out.push(got);
    return true;
  }

  private _text(text: string, out: ProbeEvent[]): void {
    this.stats.lines++;
    const obj = parseObject(text);
    if (obj === undefined) {
      this.stats.malformed++;
      return;
    }
    const ev = this._toEvent(obj, text);
    if (ev !== undefined) {
      this.stats.events++;
      out.push(ev);
    }
  }

  private _toEvent(obj: Record<string, unknown>, text: string): ProbeEvent | undefined {
    const rawType = obj.type;
    if (typeof rawType !== 'string' || rawType.length === 0) {
      this.stats.notEvents++;
      return undefined;
    }
    const legacy = typeof obj.module !== 'string';
    let type = legacy ? rawType.replaceAll('-', '_') : rawType;
    if (legacy && type === 'h2olog_event_lost') {
      const lost = obj.lost;
      this.stats.reportedLost += typeof lost === 'number' ? lost : 1;
      return undefined;
    }
    // A Map: a line's type is data, and `toString` or `constructor` must not find Object.prototype's.
    type = USDT_TO_LOG_NAME.get(type) ?? type;
    const module = legacy ? legacyModule(type) : (obj.module as string);
    // The current format's parsed line is used as the fields object as is (no copy per event), unless a value is
    // not a field value (nested JSON: not H2O's) or the line is the old format, whose names need rewriting.
    const plain = checkFieldValues(obj, text);
    const fields = !legacy && plain ? (obj as Record<string, FieldValue>) : copyFields(obj, type, legacy);
    const tid = typeof obj.tid === 'number' ? obj.tid : 0;
    const time = obj.time;
    const timeMs = typeof time === 'number' ? time : this._now();
    const subNs = obj.time_sub_ns;
    const timeSubNs = typeof subNs === 'number' && subNs >= 0 && subNs < 1e6 ? subNs : 0;
    return { module, type, tid, timeMs, timeSubNs, fields };
  }
}

function legacyModule(type: string): string {
  if (H2O_POINTS.has(type)) return 'h2o';
  return PICOTLS_POINTS.has(type) ? 'picotls' : 'quicly';
}

/**
 * Whether every value is a field value (nested JSON is not H2O's). Integers above 2^53 are rare (quicly error
 * codes, SIZE_MAX content lengths, some stats): JSON.parse rounds them, so they are read again from their literal
 * as bigint, in the same pass.
 */
function checkFieldValues(obj: Record<string, unknown>, text: string): boolean {
  let plain = true;
  for (const key in obj) {
    const v = obj[key];
    if (typeof v === 'number') {
      if (v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER)
        obj[key] = exactInteger(text, key) ?? v;
    } else if (typeof v !== 'string' && typeof v !== 'boolean') {
      plain = false;
    }
  }
  return plain;
}

function copyFields(obj: Record<string, unknown>, type: string, legacy: boolean): Record<string, FieldValue> {
  const renames = legacy ? LEGACY_FIELD_RENAMES.get(type) : undefined;
  const fields: Record<string, FieldValue> = {};
  for (const key in obj) {
    if (COMMON_KEYS.has(key)) continue;
    const value = obj[key];
    if (!isFieldValue(value)) continue;
    let name = legacy ? key.replaceAll('-', '_') : key;
    if (renames !== undefined) name = renames.get(name) ?? name;
    fields[name] = value;
  }
  return fields;
}

function isFieldValue(v: unknown): v is FieldValue {
  const t = typeof v;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'bigint';
}

/** JSON.parse of an object line that never throws. */
function parseObject(text: string): Record<string, unknown> | undefined {
  if (text.charCodeAt(0) !== 0x7b /* { */) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The literal of top-level `key` read again from the line, as a bigint. Inside a JSON string every quote is
 * escaped, so `"key":` can only match the key itself.
 */
function exactInteger(text: string, key: string): bigint | undefined {
  const needle = JSON.stringify(key) + ':';
  const at = text.indexOf(needle);
  if (at < 0) return undefined;
  const m = INTEGER_AT.exec(text.slice(at + needle.length, at + needle.length + 24));
  return m === null ? undefined : BigInt(m[1]!);
}
