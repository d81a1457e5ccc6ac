/**
 * The TypeScript side of `struct h2o_usdt_config` and `struct h2o_usdt_counters` (native/h2o_usdt.h): the probe
 * descriptors written into the program's .rodata before it is loaded, and the counters read from its .bss.
 * A test checks these offsets against the C header compiled with gcc.
 */
import type { UsedHeaderNames } from '../../events/types.js';
import type { UsdtProbe } from '../../events/usdt-probes.js';
import { MAX_PROBES, MAX_STRING, MAX_STRINGS } from './record-decoder.js';

export const CONFIG = {
  sampleThreshold: 0,
  pidnsDev: 8,
  pidnsIno: 16,
  ringbufFlags: 24,
  countOnly: 32,
  headerFilter: 40,
  probes: 48,
  size: 48 + 32 * MAX_PROBES,
} as const;

export const PROBE_DESC = {
  nargs: 0,
  idKind: 1,
  role: 2,
  streamArg: 3,
  str: 8,
  size: 32,
  strKind: 0,
  strPtrArg: 1,
  strLenArg: 2,
  strCap: 4,
  strSize: 8,
} as const;

export const COUNTERS = {
  emitted: 0,
  lost: 8,
  readFailures: 16,
  truncated: 24,
  sampledOut: 32,
  skippedHeaders: 40,
  hits: 64,
  size: 64 + 8 * MAX_PROBES,
} as const;

/** enum h2o_usdt_id_kind, enum h2o_usdt_role, enum h2o_usdt_str_kind. */
export const ID_KIND = { none: 0, conn: 1, sock: 2, quic: 3 } as const;
export const ROLE = {
  none: 0,
  h1_accept: 1,
  h3_accept: 2,
  conn_end: 3,
  quic_end: 4,
  request_header: 5,
  response_header: 6,
} as const;
/** H2O_USDT_FILTER_*; the key size of the `header_names` map. */
export const HEADER_FILTER = { request: 1, response: 2 } as const;
export const HEADER_KEY_BYTES = 32;
export const STR_KIND = { str: 1, cstr: 2, sockaddr: 3 } as const;
const BPF_RB_NO_WAKEUP = 1n;
/** Header names are short; 256 bytes covers any real one. C strings are uuids, hex CIDs, addresses, errors. */
const NAME_CAP = 256;
const CSTR_CAP = 256;
const SOCKADDR_BYTES = 28;

export interface ConfigValues {
  /** Fraction of connections kept (undefined or 1: all). */
  readonly sampleRatio: number | undefined;
  /** The tracer's PID namespace, or undefined for global ids. */
  readonly pidns: { dev: bigint; ino: bigint } | undefined;
  /** Bytes of a header value copied at most. */
  readonly valueCap: number;
  readonly probes: readonly UsdtProbe[];
  /** Count probe hits and send nothing (the benchmark's bare-uprobe baseline). */
  readonly countOnly: boolean;
  /** Directions whose header records are sent only for the names in the `header_names` map. */
  readonly headerFilter: { readonly request: boolean; readonly response: boolean };
}

/** Fill `mem` (the .rodata initial value, CONFIG.size bytes) with the configuration. */
export function writeConfig(mem: Buffer, v: ConfigValues): void {
  mem.fill(0, 0, CONFIG.size);
  mem.writeBigUInt64LE(sampleThreshold(v.sampleRatio), CONFIG.sampleThreshold);
  mem.writeBigUInt64LE(v.pidns?.dev ?? 0n, CONFIG.pidnsDev);
  mem.writeBigUInt64LE(v.pidns?.ino ?? 0n, CONFIG.pidnsIno);
  mem.writeBigUInt64LE(BPF_RB_NO_WAKEUP, CONFIG.ringbufFlags);
  mem.writeBigUInt64LE(v.countOnly ? 1n : 0n, CONFIG.countOnly);
  const filter =
    (v.headerFilter.request ? HEADER_FILTER.request : 0) |
    (v.headerFilter.response ? HEADER_FILTER.response : 0);
  mem.writeBigUInt64LE(BigInt(filter), CONFIG.headerFilter);
  const valueCap = Math.max(1, Math.min(v.valueCap, MAX_STRING));
  for (const p of v.probes) {
    const d = CONFIG.probes + p.id * PROBE_DESC.size;
    mem[d + PROBE_DESC.nargs] = p.args.length;
    mem[d + PROBE_DESC.idKind] = ID_KIND[p.idKind];
    mem[d + PROBE_DESC.role] = ROLE[p.role];
    mem.writeInt8(-1, d + PROBE_DESC.streamArg);
    let s = 0;
    p.args.forEach((arg, i) => {
      if (arg.kind === 'stream') mem.writeInt8(i, d + PROBE_DESC.streamArg);
      if (arg.kind !== 'str' && arg.kind !== 'cstr' && arg.kind !== 'sockaddr') return;
      if (s >= MAX_STRINGS) throw new Error(`probe ${p.name}: more than ${MAX_STRINGS} strings`);
      const o = d + PROBE_DESC.str + s * PROBE_DESC.strSize;
      mem[o + PROBE_DESC.strKind] = STR_KIND[arg.kind];
      mem[o + PROBE_DESC.strPtrArg] = i;
      mem[o + PROBE_DESC.strLenArg] = arg.lengthArg ?? 0;
      const cap =
        arg.kind === 'sockaddr'
          ? SOCKADDR_BYTES
          : arg.kind === 'cstr'
            ? CSTR_CAP
            : arg.field === 'name'
              ? NAME_CAP
              : valueCap;
      mem.writeUInt16LE(cap, o + PROBE_DESC.strCap);
      s++;
    });
  }
}

/**
 * The `header_names` map's entries: each used header name, with the directions (HEADER_FILTER bits) it is used in.
 * Names longer than a key never reach the map's lookup: BPF sends them on and user space decides.
 */
export function headerNameEntries(used: UsedHeaderNames): { key: Buffer; value: Buffer }[] {
  const bits = new Map<string, number>();
  const add = (names: readonly string[] | 'all', bit: number): void => {
    if (names === 'all') return;
    for (const n of names) bits.set(n, (bits.get(n) ?? 0) | bit);
  };
  add(used.request, HEADER_FILTER.request);
  add(used.response, HEADER_FILTER.response);
  const entries: { key: Buffer; value: Buffer }[] = [];
  for (const [name, bit] of bits) {
    if (Buffer.byteLength(name) > HEADER_KEY_BYTES) continue;
    const key = Buffer.alloc(HEADER_KEY_BYTES);
    key.write(name);
    entries.push({ key, value: Buffer.of(bit) });
  }
  return entries;
}

export interface BpfCounters {
  emitted: number;
  lost: number;
  readFailures: number;
  truncated: number;
  sampledOut: number;
  /** Header hits of names no span uses, dropped in BPF. */
  skippedHeaders: number;
  hits: number;
}

export function readCounters(mem: Buffer): BpfCounters {
  const u64 = (o: number): number => Number(mem.readBigUInt64LE(o));
  let hits = 0;
  for (let i = 0; i < MAX_PROBES; i++) hits += u64(COUNTERS.hits + 8 * i);
  return {
    emitted: u64(COUNTERS.emitted),
    lost: u64(COUNTERS.lost),
    readFailures: u64(COUNTERS.readFailures),
    truncated: u64(COUNTERS.truncated),
    sampledOut: u64(COUNTERS.sampledOut),
    skippedHeaders: u64(COUNTERS.skippedHeaders),
    hits,
  };
}

/** BPF keeps a connection when a 32-bit hash or random number is below this: 2^32 keeps every one. */
export function sampleThreshold(ratio: number | undefined): bigint {
  return ratio === undefined || ratio >= 1 ? 1n << 32n : BigInt(Math.floor(Math.max(0, ratio) * 2 ** 32));
}
