/**
 * Reading an h2olog line in place, without JSON.parse, where spans need little of it. Lines no span uses are only
 * counted: headers of other names, QUIC streams without a request, TLS secrets other than early data's. Lines of
 * which spans read a few fields (`conn_stats`: 15 of ~130) yield an event of just those fields.
 *
 * Only the current socket format, as H2O writes it, takes a shortcut: `{"module":"…","type":"…","tid":…`, one flat
 * object per line. Anything else — another spelling, an escape in a value read, a number that is not a plain
 * integer, a line cut or glued to another — is left to the parse, which judges it as before.
 */
import type { FieldSubset, FieldUse, FieldValue, HeaderUse, ProbeEvent } from './types.js';

export interface ShortcutOptions {
  /** Header lines of names this rejects are counted, not parsed. */
  readonly usesHeader?: HeaderUse;
  /** Points of which only some events change a span: the others are counted, not parsed. */
  readonly fieldUses?: readonly FieldUse[];
  /** Points of which spans read only some fields: just those are read. */
  readonly fieldSubsets?: readonly FieldSubset[];
}

/** What `read` made of a line: an event, one of these counts, or undefined (parse it). */
export const UNUSED_HEADER = 1;
export const UNUSED_EVENT = 2;
export type Shortcut = ProbeEvent | typeof UNUSED_HEADER | typeof UNUSED_EVENT | undefined;

/** One point's shortcut: a sieve (`key`, `used`, `counts`) or a subset (`names`, `needles`). */
class Rule {
  /** `{"module":"…","type":"…",` */
  readonly prefix: string;
  /** A subset's fields as `"field":` */
  readonly needles: readonly string[] | undefined;

  // One class, every field always set: the rule read on every line stays of one shape, which V8 keeps optimised.
  constructor(
    readonly module: string,
    readonly type: string,
    /** A sieve's `,"field":`, whether an event with that value is used, and how a rejected one counts. */
    readonly key: string,
    readonly used: (value: FieldValue) => boolean,
    readonly counts: typeof UNUSED_HEADER | typeof UNUSED_EVENT,
    /** A subset's fields. */
    readonly names: readonly string[] | undefined,
  ) {
    this.prefix = `{"module":"${module}","type":"${type}",`;
    this.needles = names?.map((n) => `${JSON.stringify(n)}:`);
  }
}

/** Where the module's name starts in a line: its first character picks the rules to try. */
const MODULE_AT = '{"module":"'.length;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export class LineShortcuts {
  private readonly _byModule = new Map<number, Rule[]>();

  constructor(opts: ShortcutOptions) {
    const rules: Rule[] = [];
    const usesHeader = opts.usesHeader;
    if (usesHeader !== undefined) {
      const request = (v: FieldValue): boolean => typeof v !== 'string' || usesHeader(v, true);
      const response = (v: FieldValue): boolean => typeof v !== 'string' || usesHeader(v, false);
      rules.push(sieve('h2o', 'receive_request_header', 'name', request, UNUSED_HEADER));
      rules.push(sieve('h2o', 'send_response_header', 'name', response, UNUSED_HEADER));
    }
    for (const u of opts.fieldUses ?? []) rules.push(sieve(u.module, u.type, u.field, u.used, UNUSED_EVENT));
    for (const s of opts.fieldSubsets ?? []) {
      // Every stage may read the conn id.
      const names = ['conn_id', ...s.fields.filter((f) => f !== 'conn_id')];
      rules.push(new Rule(s.module, s.type, '', () => true, UNUSED_EVENT, names));
    }
    for (const r of rules) {
      const c = r.prefix.charCodeAt(MODULE_AT);
      this._byModule.set(c, [...(this._byModule.get(c) ?? []), r]);
    }
  }

  get empty(): boolean {
    return this._byModule.size === 0;
  }

  /** The line `text[from, to)` (no newline), if a rule can read it in place. */
  read(text: string, from: number, to: number): Shortcut {
    const rules = this._byModule.get(text.charCodeAt(from + MODULE_AT));
    if (rules === undefined) return undefined;
    for (const r of rules) {
      if (!text.startsWith(r.prefix, from)) continue;
      // One flat object: it ends the line, and no second one starts in it (two lines glued by a partial write).
      if (text.charCodeAt(to - 1) !== CLOSE_BRACE) return undefined;
      const brace = text.indexOf('{', from + 1);
      if (brace >= 0 && brace < to) return undefined;
      if (r.needles !== undefined) return subsetEvent(text.slice(from, to), r, r.needles);
      const value = valueAfter(text, text.indexOf(r.key, from + r.prefix.length - 1), r.key, to);
      return value === undefined || r.used(value) ? undefined : r.counts;
    }
    return undefined;
  }
}

function sieve(
  module: string,
  type: string,
  field: string,
  used: (value: FieldValue) => boolean,
  counts: typeof UNUSED_HEADER | typeof UNUSED_EVENT,
): Rule {
  return new Rule(module, type, `,"${field}":`, used, counts, undefined);
}

/**
 * The value whose key `needle` was found at `at` (-1: not found), if it ends before `to` and is a string without
 * escapes or a plain integer of at most 15 digits (exact as a number; longer ones are left to the parse, which
 * keeps them as bigint). Outside JSON strings a quote is never escaped, so a needle that starts with one can only
 * match the key itself.
 */
function valueAfter(text: string, at: number, needle: string, to: number): FieldValue | undefined {
  if (at < 0 || at >= to) return undefined;
  const start = at + needle.length;
  if (text.charCodeAt(start) === QUOTE) {
    const end = text.indexOf('"', start + 1);
    if (end < 0 || end >= to) return undefined;
    // A loop, not indexOf: that would search on to the end of the chunk when the line has no escape.
    for (let i = start + 1; i < end; i++) if (text.charCodeAt(i) === BACKSLASH) return undefined;
    return text.slice(start + 1, end);
  }
  let i = start;
  if (text.charCodeAt(i) === 0x2d /* - */) i++;
  const digitsFrom = i;
  let v = 0;
  for (let c = text.charCodeAt(i); c >= 0x30 && c <= 0x39; c = text.charCodeAt(++i)) v = v * 10 + (c - 0x30);
  const after = text.charCodeAt(i);
  if (i === digitsFrom || i - digitsFrom > 15 || (after !== 0x2c /* , */ && after !== CLOSE_BRACE))
    return undefined;
  return start === digitsFrom ? v : -v;
}

const TID = ',"tid":';
const TIME = ',"time":';
const TIME_SUB_NS = ',"time_sub_ns":';

/**
 * The event of a subset rule's line (`line` is the line alone, so a search for a missing key ends with it). H2O
 * writes a point's fields in one order, so each key is searched from where the previous one ended, and from the
 * start only when it is not there.
 */
function subsetEvent(line: string, r: Rule, needles: readonly string[]): ProbeEvent | undefined {
  const afterType = r.prefix.length - 1;
  if (!line.startsWith(TID, afterType)) return undefined;
  const tid = valueAfter(line, afterType, TID, line.length);
  const timeAt = line.indexOf(TIME, afterType + TID.length);
  const time = valueAfter(line, timeAt, TIME, line.length);
  if (typeof tid !== 'number' || typeof time !== 'number') return undefined;
  let timeSubNs = 0;
  let pos = line.indexOf(',', timeAt + TIME.length);
  // `--record` writes the sub-ms part right after `time`.
  if (line.startsWith(TIME_SUB_NS, pos)) {
    const sub = valueAfter(line, pos, TIME_SUB_NS, line.length);
    if (typeof sub !== 'number' || sub < 0 || sub >= 1e6) return undefined;
    timeSubNs = sub;
  }
  const fields: Record<string, FieldValue> = {};
  for (let k = 0; k < needles.length; k++) {
    const needle = needles[k]!;
    let at = line.indexOf(needle, pos);
    if (at < 0) at = line.indexOf(needle);
    if (at < 0) continue;
    const v = valueAfter(line, at, needle, line.length);
    if (v === undefined) return undefined;
    fields[r.names![k]!] = v;
    pos = at + needle.length;
  }
  return { module: r.module, type: r.type, tid, timeMs: time, timeSubNs, fields };
}
