/**
 * BPF ring-buffer records (layout: native/h2o_usdt.h) → ProbeEvents in the h2olog socket's shape, so the
 * correlator cannot tell the sources apart. One decoder per traced process: quicly's connection pointers, which
 * this decoder maps to H2O conn ids, are only meaningful within one process.
 */
import { decodeUtf8Escaping } from '../../events/utf8.js';
import type { FieldValue, HeaderUse, ProbeEvent } from '../../events/types.js';
import type { KtimeClock } from '../bpf/clock.js';
import { formatSockaddr } from '../bpf/sockaddr.js';
import { USDT_PROBES } from '../../events/usdt-probes.js';
import type { UsdtProbe } from '../../events/usdt-probes.js';

/** Offsets in `struct h2o_usdt_record`; a test checks them against the C header. */
export const RECORD = {
  tsNs: 0,
  pid: 8,
  tid: 12,
  probe: 16,
  size: 18,
  nargs: 20,
  flags: 21,
  strLen: 24,
  args: 32,
} as const;
export const MAX_ARGS = 12;
export const MAX_STRINGS = 3;
export const MAX_PROBES = 64;
export const MAX_STRING = 4096;

const FLAG_TRUNCATED = (i: number): number => 1 << i;
const FLAG_READ_FAILED = (i: number): number => 1 << (4 + i);
const TWO_32 = 0x1_0000_0000;

export interface UsdtDecodeStats {
  records: number;
  /** Records too short for their header or arguments, or with an unknown probe id. */
  badRecords: number;
  /** quicly events of connections H2O never accepted (or whose accept was not seen): exported without conn id. */
  unmappedQuicEvents: number;
}

export function newUsdtDecodeStats(): UsdtDecodeStats {
  return { records: 0, badRecords: 0, unmappedQuicEvents: 0 };
}

/** Events of one quicly connection held until `h3s_accept` tells its conn id; bounded. */
const MAX_PENDING_PER_QUIC = 256;
const MAX_PENDING_QUIC = 4096;

const REQUEST_HEADER = USDT_PROBES.findIndex((p) => p.name === 'receive_request_header');
const RESPONSE_HEADER = USDT_PROBES.findIndex((p) => p.name === 'send_response_header');

export class UsdtRecordDecoder {
  private readonly _quicConn = new Map<FieldValue, number>();
  private readonly _pending = new Map<FieldValue, ProbeEvent[]>();
  private _unusedHeaders = 0;
  /** The sub-millisecond part of the time `_timeMs` read last: two numbers without an object per record. */
  private _timeSubNs = 0;

  /** `usesHeader`: header records of other names are counted (`takeUnusedHeaders`), not decoded. */
  constructor(
    private readonly _clock: KtimeClock,
    readonly stats: UsdtDecodeStats = newUsdtDecodeStats(),
    private readonly _usesHeader?: HeaderUse,
  ) {}

  /** Header records left undecoded since the last call. */
  takeUnusedHeaders(): number {
    const n = this._unusedHeaders;
    this._unusedHeaders = 0;
    return n;
  }

  /** Decode the record of `len` bytes at `off` in `buf` and append what it yields to `out`. */
  decode(buf: Buffer, off: number, len: number, out: ProbeEvent[]): void {
    this.stats.records++;
    const id = len >= RECORD.args ? buf.readUInt16LE(off + RECORD.probe) : -1;
    const probe = USDT_PROBES[id];
    const nargs = buf[off + RECORD.nargs]!;
    if (probe === undefined || nargs > MAX_ARGS || RECORD.args + 8 * nargs > len) {
      this.stats.badRecords++;
      return;
    }
    if ((id === REQUEST_HEADER || id === RESPONSE_HEADER) && this._unusedHeader(buf, off, len, nargs, id)) {
      this._unusedHeaders++;
      return;
    }
    const ev = this._event(buf, off, len, probe, nargs);
    if (ev === undefined) {
      this.stats.badRecords++;
      return;
    }
    if (probe.provider === 'quicly') this._quicly(ev, out);
    else {
      if (probe.name === 'h3s_accept') this._mapQuic(ev, out);
      out.push(ev);
    }
  }

  /** A header record whose name (its first string, read whole) no span uses: only the name is decoded. */
  private _unusedHeader(buf: Buffer, off: number, len: number, nargs: number, id: number): boolean {
    const usesHeader = this._usesHeader;
    if (usesHeader === undefined) return false;
    if ((buf[off + RECORD.flags]! & (FLAG_TRUNCATED(0) | FLAG_READ_FAILED(0))) !== 0) return false;
    const from = off + RECORD.args + 8 * nargs;
    const to = from + buf.readUInt16LE(off + RECORD.strLen);
    if (to > off + len) return false;
    return !usesHeader(decodeString(buf, from, to), id === REQUEST_HEADER);
  }

  private _event(
    buf: Buffer,
    off: number,
    len: number,
    probe: UsdtProbe,
    nargs: number,
  ): ProbeEvent | undefined {
    const flags = buf[off + RECORD.flags]!;
    const fields: Record<string, FieldValue> = {};
    let strOff = off + RECORD.args + 8 * nargs;
    let str = 0;
    const end = off + len;
    for (let i = 0; i < probe.args.length && i < nargs; i++) {
      const arg = probe.args[i]!;
      const at = off + RECORD.args + 8 * i;
      if (arg.kind === 'str' || arg.kind === 'cstr' || arg.kind === 'sockaddr') {
        const n = buf.readUInt16LE(off + RECORD.strLen + 2 * str);
        if (strOff + n > end) return undefined;
        if (arg.field !== undefined && (flags & FLAG_READ_FAILED(str)) === 0) {
          fields[arg.field] =
            arg.kind === 'sockaddr'
              ? formatSockaddr(buf.subarray(strOff, strOff + n))
              : decodeString(buf, strOff, strOff + n);
          if ((flags & FLAG_TRUNCATED(str)) !== 0) fields[`${arg.field}_truncated`] = true;
        }
        strOff += n;
        str++;
        continue;
      }
      if (arg.field === undefined) continue;
      const value = argValue(buf, at, arg.kind);
      fields[arg.field] = value;
      if (probe.provider === 'quicly' && i === 0) {
        // Right after `conn`, as the socket writes it, when `h3s_accept` has told the pointer's conn id.
        const connId = this._quicConn.get(value);
        if (connId !== undefined) fields.conn_id = connId;
      }
    }
    return {
      module: probe.provider,
      type: probe.logName,
      tid: buf.readUInt32LE(off + RECORD.tid),
      timeMs: this._timeMs(buf, off),
      timeSubNs: this._timeSubNs,
      fields,
    };
  }

  /** The record's epoch time in ms; its sub-millisecond ns are left in `_timeSubNs`. */
  private _timeMs(buf: Buffer, off: number): number {
    const ms = this._clock.epochMs(
      buf.readUInt32LE(off + RECORD.tsNs + 4),
      buf.readUInt32LE(off + RECORD.tsNs),
    );
    this._timeSubNs = this._clock.lastSubNs;
    return ms;
  }

  /** quicly events carry only the connection pointer: add H2O's conn id, known from `h3s_accept`. */
  private _quicly(ev: ProbeEvent, out: ProbeEvent[]): void {
    const ptr = ev.fields.conn!;
    if (ev.fields.conn_id !== undefined) {
      out.push(ev);
      if (ev.type === 'free') this._quicConn.delete(ptr);
      return;
    }
    if (ev.type === 'free') {
      // Never accepted by H2O (a failed handshake, or h2o's own outgoing HTTP/3): release what was held.
      const held = this._pending.get(ptr);
      this._pending.delete(ptr);
      if (held !== undefined) {
        this.stats.unmappedQuicEvents += held.length;
        for (const e of held) out.push(e);
      }
      this.stats.unmappedQuicEvents++;
      out.push(ev);
      return;
    }
    let held = this._pending.get(ptr);
    if (held === undefined) {
      if (this._pending.size >= MAX_PENDING_QUIC) this._releaseOldestPending(out);
      held = [];
      this._pending.set(ptr, held);
    }
    if (held.length < MAX_PENDING_PER_QUIC) held.push(ev);
    else {
      this.stats.unmappedQuicEvents++;
      out.push(ev);
    }
  }

  /** `h3s_accept(conn_id, conn, quic)`: from now on the pointer means this conn id; release its earlier events. */
  private _mapQuic(ev: ProbeEvent, out: ProbeEvent[]): void {
    const quic = ev.fields.quic;
    const connId = ev.fields.conn_id;
    if (quic === undefined || typeof connId !== 'number') return;
    this._quicConn.set(quic, connId);
    const held = this._pending.get(quic);
    if (held === undefined) return;
    this._pending.delete(quic);
    for (const e of held) {
      const fields: Record<string, FieldValue> = {};
      for (const key in e.fields) {
        fields[key] = e.fields[key]!;
        if (key === 'conn') fields.conn_id = connId;
      }
      out.push({ ...e, fields });
    }
  }

  private _releaseOldestPending(out: ProbeEvent[]): void {
    const [ptr, held] = this._pending.entries().next().value!;
    this._pending.delete(ptr);
    this.stats.unmappedQuicEvents += held.length;
    for (const e of held) out.push(e);
  }
}

/** Header names and values are nearly always ASCII: read those without an intermediate Buffer. */
function decodeString(buf: Buffer, from: number, to: number): string {
  for (let i = from; i < to; i++) {
    if (buf[i]! >= 0x80) return decodeUtf8Escaping(buf.subarray(from, to), false).text;
  }
  return buf.toString('latin1', from, to);
}

function argValue(buf: Buffer, at: number, kind: string): FieldValue {
  const lo = buf.readUInt32LE(at);
  const hi = buf.readUInt32LE(at + 4);
  switch (kind) {
    case 'bool':
      return lo !== 0;
    case 'u8':
      return lo & 0xff;
    case 'i8':
      return (lo << 24) >> 24;
    case 'u32':
      return lo;
    case 'i32':
      return lo | 0;
    case 'i64':
    case 'stream':
      if (hi === 0xffff_ffff && lo >= 0x8000_0000) return lo - TWO_32;
      if (hi >= 0x8000_0000) return buf.readBigInt64LE(at);
      break;
  }
  if (hi < 0x20_0000) return hi * TWO_32 + lo;
  return buf.readBigUInt64LE(at);
}
