/**
 * h2olog JSON lines → ProbeEvents. Accepts the current socket format (`module`, `type`, `tid`, `time`, fields)
 * and the old BPF h2olog format (`type` and field names with `-`, a `seq` counter, no `module`).
 * Robust to what real H2O writes: raw bytes >= 0x80, integers above 2^53, very long lines, and lines glued or cut
 * by a partial write. A bad line is counted and skipped; it never stops the stream.
 */
import { H2O_POINTS, LEGACY_FIELD_RENAMES, PICOTLS_POINTS } from './catalogue.js';
import { USDT_TO_LOG_NAME } from './usdt-probes.js';
import { COMMON_KEYS } from './types.js';
import { EventClock } from './event-clock.js';
import { fieldProblem, fieldsProblem, isCount } from './field-checks.js';
import type { FieldProblem } from './field-checks.js';
import { nestedBeyond } from './json-depth.js';
import { LineShortcuts, UNUSED_EVENT, UNUSED_HEADER } from './line-shortcuts.js';
import type { DecodeStats, FieldSubset, FieldUse, FieldValue, HeaderUse, ProbeEvent } from './types.js';
import { decodeUtf8Escaping } from './utf8.js';

const NEWLINE = 0x0a;
/**
 * Lines longer than this are scanned for nesting before JSON.parse (see json-depth.ts); a shorter one parses into a
 * few tens of KiB at worst, however deep.
 */
const SCAN_BEFORE_PARSE = 1024;

/** What a parsed line can be turned away for before its nesting is known. */
type Rejection = FieldProblem | 'malformed' | 'notEvents';
const INTEGER_AT = /^\s*(-?\d+)\s*(?:[,}]|$)/;

/**
 * The longest line read by default. H2O's longest lines carry a header (its request and response header sections
 * are bounded in tens of KiB; escaping at most sextuples a byte) or a hex dump of one QUIC packet (a few KiB): 1 MiB
 * holds any of them with room to spare, and bounds what one line can make h2o-otel buffer.
 */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

export interface JsonDecoderOptions {
  /** Lines longer than this are dropped and counted (`tooLong`); see DEFAULT_MAX_LINE_BYTES. */
  readonly maxLineBytes: number;
  /**
   * Wall clock, read once per chunk: the time of lines without `time` in a stream that has none (the 2024 v1
   * socket format), and what tells a live stream's idle gap from a jump (see EventClock); injectable for tests.
   */
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
  private readonly _clock: EventClock;

  constructor(
    private readonly _opts: JsonDecoderOptions,
    readonly stats: DecodeStats,
  ) {
    this._now = _opts.now ?? Date.now;
    this._clock = new EventClock(stats);
    const shortcuts = new LineShortcuts(_opts);
    this._shortcuts = shortcuts.empty ? undefined : shortcuts;
  }

  /** Decode every complete line in `chunk`, appending events to `out`. Keeps a trailing partial line. */
  push(chunk: Buffer, out: ProbeEvent[]): void {
    this._clock.wall = this._now();
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
    this._clock.chunkEnd(out);
  }

  /** The stream ended: a trailing line without newline is decoded if it is complete JSON, else counted. */
  end(out: ProbeEvent[]): void {
    this._clock.wall = this._now();
    if (this._pendingBytes > 0 && !this._discarding) {
      this._line(Buffer.concat(this._pending, this._pendingBytes), out);
    }
    this._clock.end(out);
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
    if (got === UNUSED_HEADER || got === UNUSED_EVENT) {
      this.stats.events++;
      if (got === UNUSED_HEADER) this.stats.unusedHeaders++;
      else this.stats.unusedEvents++;
      return true;
    }
    // A shortcut reads integers of at most 15 digits: only a sign can put the time out of range.
    const problem = got.timeMs < 0 ? 'badTimes' : (fieldsProblem(got.fields) ?? tidProblem(got.tid));
    if (problem !== undefined) this.stats[problem]++;
    else this._clock.admit(got, out);
    return true;
  }

  private _text(text: string, out: ProbeEvent[]): void {
    this.stats.lines++;
    // A long line is judged before the parse could build its nesting. A short one parses into little whatever it
    // holds, so its nesting is looked at only once it proves not flat (`_reject`, `_toEvent`): a flat line, nearly
    // every one, costs no scan of its own. Either way a line nested too deep is counted as `tooDeep`, and only so.
    if (text.length > SCAN_BEFORE_PARSE && nestedBeyond(text)) return void this.stats.tooDeep++;
    const obj = parseObject(text);
    if (obj === undefined) return this._reject(text, 'malformed');
    this._toEvent(obj, text, out);
  }

  /** A line turned away for `why`, unless it is nested too deep, which is counted first (see `_text`). */
  private _reject(text: string, why: Rejection): void {
    this.stats[nestedBeyond(text) ? 'tooDeep' : why]++;
  }

  /** The event of a parsed line, admitted by the clock into `out`, or counted under why it is not one. */
  private _toEvent(obj: Record<string, unknown>, text: string, out: ProbeEvent[]): void {
    const rawType = obj.type;
    if (typeof rawType !== 'string' || rawType.length === 0) return this._reject(text, 'notEvents');
    const legacy = typeof obj.module !== 'string';
    let type = legacy ? rawType.replaceAll('-', '_') : rawType;
    if (legacy && type === 'h2olog_event_lost') {
      if (nestedBeyond(text)) return void this.stats.tooDeep++;
      const lost = obj.lost;
      this.stats.reportedLost += typeof lost === 'number' ? lost : 1;
      return;
    }
    // A Map: a line's type is data, and `toString` or `constructor` must not find Object.prototype's.
    type = USDT_TO_LOG_NAME.get(type) ?? type;
    const module = legacy ? legacyModule(type) : (obj.module as string);
    // The current format's parsed line is used as the fields object as is (no copy per event), unless a value is
    // not a field value (nested JSON: not H2O's) or the line is the old format, whose names need rewriting.
    const checked = checkFieldValues(obj, text);
    if (typeof checked === 'string') return this._reject(text, checked);
    // Every check after this one is of a line judged flat, or of one whose nesting was just looked at.
    if (!checked && nestedBeyond(text)) return void this.stats.tooDeep++;
    const fields = !legacy && checked ? (obj as Record<string, FieldValue>) : copyFields(obj, type, legacy);
    // The old format's names are checked once renamed.
    const problem = legacy ? fieldsProblem(fields) : undefined;
    if (problem !== undefined) return void this.stats[problem]++;
    const rawTid = obj.tid;
    if (rawTid !== undefined && tidProblem(rawTid) !== undefined) return void this.stats.badIds++;
    const tid = rawTid === undefined ? 0 : (rawTid as number);
    const time = obj.time;
    if (time !== undefined && !isTime(time)) return void this.stats.badTimes++;
    const subNs = obj.time_sub_ns;
    const timeSubNs = typeof subNs === 'number' && subNs >= 0 && subNs < 1e6 ? subNs : 0;
    if (time === undefined) {
      const timeMs = this._clock.fill();
      return this._clock.pass({ module, type, tid, timeMs, timeSubNs, fields }, out);
    }
    this._clock.admit({ module, type, tid, timeMs: time as number, timeSubNs, fields }, out);
  }
}

/** A `time` in ms since the epoch: a finite non-negative number (JSON's 1e999 parses to Infinity). */
function isTime(v: unknown): boolean {
  return typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

function tidProblem(tid: unknown): FieldProblem | undefined {
  return isCount(tid) ? undefined : 'badIds';
}

function legacyModule(type: string): string {
  if (H2O_POINTS.has(type)) return 'h2o';
  return PICOTLS_POINTS.has(type) ? 'picotls' : 'quicly';
}

/**
 * Whether every value is a field value (a null is not H2O's), or the first field later stages read that does not
 * fit (see field-checks.ts). Integers above 2^53 are rare (quicly error codes, SIZE_MAX content lengths, some
 * stats): JSON.parse rounds them, so they are read again from their literal as bigint, in the same pass.
 */
function checkFieldValues(obj: Record<string, unknown>, text: string): boolean | FieldProblem {
  let plain = true;
  for (const key in obj) {
    let v = obj[key];
    if (typeof v === 'number') {
      if (v > Number.MAX_SAFE_INTEGER || v < -Number.MAX_SAFE_INTEGER)
        v = obj[key] = exactInteger(text, key) ?? v;
    } else if (typeof v !== 'string' && typeof v !== 'boolean') {
      plain = false;
    }
    const problem = fieldProblem(key, v);
    if (problem !== undefined) return problem;
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
