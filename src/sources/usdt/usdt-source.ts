/**
 * `--pid PID` / `--binary PATH`: attach the BPF program (native/h2o_usdt.bpf.o) to H2O's USDT probes and stream
 * its records into one event session per traced process (H2O's conn ids are per process).
 *
 * The ring buffer is read from its memory mapping on a timer (default every 10 ms): the program never wakes the
 * reader, because a wakeup per event triples what each probe hit costs H2O. Every record the full ring refused and
 * every failed read of H2O's memory is counted by the program and reported.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { clockOffset, RECORD, UsdtRecordDecoder, newUsdtDecodeStats } from '../../events/decode-usdt.js';
import type { UsdtDecodeStats } from '../../events/decode-usdt.js';
import type { ProbeEvent, UsedHeaderNames } from '../../events/types.js';
import type { Sessions, SourceSink } from '../sink.js';
import { usdtProbe } from '../../events/usdt-probes.js';
import type { UsdtProbe } from '../../events/usdt-probes.js';
import {
  COUNTERS,
  CONFIG,
  HEADER_FILTER,
  HEADER_KEY_BYTES,
  readCounters,
  writeConfig,
} from './bpf-config.js';
import type { BpfCounters } from './bpf-config.js';
import { ElfError, hasIndexedArgument, readUsdtNotes } from './elf-notes.js';
import type { UsdtNote } from './elf-notes.js';
import { loadNative, NativeLoadError, PROT_READ } from './native.js';
import type { Native, Pointer } from './native.js';
import { RingReader } from './ring.js';

export const DEFAULT_BPF_OBJECT = fileURLToPath(
  new URL('../../../../native/h2o_usdt.bpf.o', import.meta.url),
);

export type UsdtTarget =
  { readonly kind: 'pid'; readonly pid: number } | { readonly kind: 'binary'; readonly path: string };

export interface UsdtSourceOptions {
  readonly target: UsdtTarget;
  /** `module:name` points the output needs (socket or USDT spelling); socket-only points are ignored. */
  readonly points: readonly string[];
  /** Ring buffer bytes: a power of two, a multiple of the page size. */
  readonly ringBytes: number;
  readonly pollMs: number;
  readonly sampleRatio: number | undefined;
  /** Bytes of a header value copied at most (up to 4096); longer ones are cut and flagged. */
  readonly maxValueBytes: number;
  readonly objectPath: string;
  /** Count probe hits in BPF and send nothing (benchmark baseline). */
  readonly countOnly?: boolean;
  /** Header names some span uses: records of other names are counted in BPF and not sent. Undefined: all sent. */
  readonly usedHeaderNames?: UsedHeaderNames;
}

export interface UsdtSourceListener {
  /** Each traced process is a session of its own (its own id space). */
  readonly sessions: Sessions;
  info(message: string): void;
  warn(message: string): void;
}

export interface UsdtStats extends BpfCounters {
  readonly probesAttached: number;
  readonly probesSkipped: number;
  readonly processes: number;
  readonly decode: UsdtDecodeStats;
}

/** Something the user must fix; the message says what. */
export class UsdtError extends Error {}

export type UsdtEnd = 'stopped' | 'target-exited';

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;
/**
 * Records are decoded and handed on in small batches: events then die young (cheap scavenges). Batches of 256k
 * kept every event of a batch alive at once, promoted them to the old generation and made GC 40% of the work.
 */
const RECORDS_PER_BATCH = 1_024;
/** Records per timer turn at most, so exports and timers still run while H2O keeps the ring full. */
const RECORDS_PER_TURN = 65_536;
const LIVENESS_MS = 250;
const EPERM = 1;
const EACCES = 13;
const EAGAIN = 11;

class InterruptedLoad extends Error {
  constructor(override readonly cause: UsdtError) {
    super(cause.message);
  }
}

const CAPABILITY_HELP =
  'run it as root, or grant the capabilities CAP_BPF and CAP_PERFMON (and CAP_SYS_PTRACE to trace a process of ' +
  'another container or user); in Kubernetes: securityContext.capabilities.add: [BPF, PERFMON, SYS_PTRACE]';

interface Session {
  readonly pid: number;
  readonly sink: SourceSink;
  readonly decoder: UsdtRecordDecoder;
  readonly batch: ProbeEvent[];
  readonly startTime: string | undefined;
}

interface Selected {
  readonly probe: UsdtProbe;
  readonly sites: readonly UsdtNote[];
}

export class UsdtSource {
  private readonly _native: Native;
  private readonly _decodeStats = newUsdtDecodeStats();
  private readonly _sessions = new Map<number, Session>();
  private readonly _links: Pointer[] = [];
  private _obj: Pointer | undefined;
  private _ring: RingReader | undefined;
  private _counters: Buffer | undefined;
  private _countersMap: { ptr: Pointer; size: number } | undefined;
  private _attached = 0;
  private _skipped = 0;
  private _pollTimer: NodeJS.Timeout | undefined;
  private _livenessTimer: NodeJS.Timeout | undefined;
  private _finish: ((end: UsdtEnd) => void) | undefined;
  private _done = false;
  private _lastSession: Session | undefined;
  private _skippedHeadersDelivered = 0;
  private _binaryId: string | undefined;
  private _selected: readonly Selected[] = [];
  private _lastBinaryCheck = 0;
  private readonly _clock;

  constructor(
    private readonly _opts: UsdtSourceOptions,
    private readonly _listener: UsdtSourceListener,
  ) {
    try {
      this._native = loadNative();
    } catch (err) {
      if (err instanceof NativeLoadError) throw new UsdtError(err.message);
      throw err;
    }
    const { realtime, monotonic } = this._native.libc.clocks();
    this._clock = clockOffset(realtime, monotonic);
  }

  /** Attach, then stream until stopped (SIGTERM) or, with `--pid`, until the process exits. */
  async run(): Promise<UsdtEnd> {
    checkCapabilities();
    const binary = this._binaryPath();
    const selected = this._select(binary);
    this._load(selected.map((s) => s.probe));
    this._selected = selected;
    this._attachAll(selected, binary);
    if (this._attached === 0) {
      this._cleanup();
      throw new UsdtError(`no probe could be attached to ${this._targetName()}; see the warnings above`);
    }
    this._listener.info(
      `attached ${this._attached} probe${this._attached === 1 ? '' : 's'} to ${this._targetName()}` +
        (this._skipped > 0 ? ` (${this._skipped} skipped)` : '') +
        `, ring buffer ${this._opts.ringBytes >> 20} MiB`,
    );
    if (this._opts.target.kind === 'binary') this._announceRunning();
    const ended = new Promise<UsdtEnd>((resolve) => (this._finish = resolve));
    this._pollTimer = setTimeout(this._poll, this._opts.pollMs);
    this._livenessTimer = setInterval(this._checkProcesses, LIVENESS_MS);
    if (this._opts.target.kind === 'pid') this._openSession(this._opts.target.pid);
    return ended;
  }

  stop(): void {
    this._end('stopped');
  }

  stats(): UsdtStats {
    const c: BpfCounters =
      this._counters === undefined
        ? { emitted: 0, lost: 0, readFailures: 0, truncated: 0, sampledOut: 0, skippedHeaders: 0, hits: 0 }
        : readCounters(this._counters);
    return {
      ...c,
      probesAttached: this._attached,
      probesSkipped: this._skipped,
      processes: this._sessions.size,
      decode: this._decodeStats,
    };
  }

  private _targetName(): string {
    const t = this._opts.target;
    return t.kind === 'pid' ? `H2O pid ${t.pid}` : `every process of ${t.path}`;
  }

  /** The file whose probes are attached: `/proc/PID/exe` reaches it even inside another mount namespace. */
  private _binaryPath(): string {
    const t = this._opts.target;
    if (t.kind === 'pid') {
      try {
        readlinkSync(`/proc/${t.pid}/exe`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT')
          throw new UsdtError(
            `no process with pid ${t.pid} here: is H2O running, and in this PID namespace? (a sidecar needs ` +
              '`shareProcessNamespace: true` in the pod spec)',
          );
        if (code === 'EACCES' || code === 'EPERM')
          throw new UsdtError(
            `cannot read /proc/${t.pid}/exe: permission denied; tracing a process of another user or container ` +
              'needs CAP_SYS_PTRACE (or root)',
          );
        throw new UsdtError(`cannot inspect pid ${t.pid}: ${(err as Error).message}`);
      }
      return `/proc/${t.pid}/exe`;
    }
    let st;
    try {
      st = statSync(t.path);
    } catch (err) {
      throw new UsdtError(
        `--binary ${t.path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      );
    }
    if (!st.isFile())
      throw new UsdtError(`--binary ${t.path}: not a file; give the path of the h2o executable`);
    this._binaryId = `${st.dev}:${st.ino}`;
    return t.path;
  }

  /** The catalogue probes the output needs that this build has; says why any is left out. */
  private _select(binary: string): Selected[] {
    let notes: UsdtNote[];
    try {
      notes = readUsdtNotes(binary);
    } catch (err) {
      const why = err instanceof ElfError ? err.message : (err as Error).message;
      throw new UsdtError(`cannot read the probes of ${this._displayBinary(binary)}: ${why}`);
    }
    if (!notes.some((n) => n.provider === 'h2o')) {
      throw new UsdtError(
        `${this._displayBinary(binary)} has no h2o USDT probes: this H2O was built without DTrace. Rebuild it with ` +
          '`cmake -DWITH_DTRACE=ON` (needs the systemtap-sdt-dev package); `h2o --version` must say "dtrace: YES". ' +
          'Or use the h2olog socket instead (--socket).',
      );
    }
    const selected: Selected[] = [];
    const seen = new Set<number>();
    for (const point of this._opts.points) {
      const probe = usdtProbe(point);
      if (probe === undefined || seen.has(probe.id)) continue;
      seen.add(probe.id);
      const sites = notes.filter((n) => n.provider === probe.provider && n.name === probe.name);
      if (sites.length === 0) {
        this._skipped++;
        this._listener.warn(
          `probe ${probe.provider}:${probe.name} is not in this H2O build (older or newer than the probes ` +
            'h2o-otel knows); skipped, the other probes keep working',
        );
        continue;
      }
      selected.push({ probe, sites });
    }
    return selected;
  }

  private _displayBinary(binary: string): string {
    if (!binary.startsWith('/proc/')) return binary;
    try {
      return `${readlinkSync(binary)} (${binary})`;
    } catch {
      return binary;
    }
  }

  /**
   * The verifier gives up with EAGAIN when a signal arrives while it works (a profiler's SIGPROF, a SIGCHLD): an
   * object cannot be loaded twice, so open it again and retry.
   */
  private _load(probes: readonly UsdtProbe[]): void {
    for (let attempt = 1; ; attempt++) {
      try {
        return this._loadOnce(probes);
      } catch (err) {
        if (!(err instanceof InterruptedLoad) || attempt >= 5)
          throw err instanceof InterruptedLoad ? err.cause : err;
      }
    }
  }

  private _loadOnce(probes: readonly UsdtProbe[]): void {
    const bpf = this._native.bpf;
    const obj = bpf.objectOpenFile(this._opts.objectPath);
    if (obj === null) {
      throw new UsdtError(
        `cannot open the BPF object ${this._opts.objectPath} (errno ${this._native.errno()}): ` +
          `${this._libbpfSays()}; reinstall h2o-otel, or rebuild it with \`npm run build:bpf\``,
      );
    }
    this._obj = obj;
    const events = bpf.findMap(obj, 'events');
    const rodata = bpf.findMap(obj, '.rodata');
    if (events === null || rodata === null) {
      this._cleanup();
      throw new UsdtError(
        `${this._opts.objectPath} is not h2o-otel's BPF program (no events map or .rodata)`,
      );
    }
    if (bpf.mapSetMaxEntries(events, this._opts.ringBytes) !== 0) {
      this._cleanup();
      throw new UsdtError(`ring buffer size ${this._opts.ringBytes} rejected: ${this._libbpfSays()}`);
    }
    const init = bpf.mapInitialValue(rodata);
    if (init.ptr === null || init.size < CONFIG.size) {
      this._cleanup();
      throw new UsdtError(
        `${this._opts.objectPath}: unexpected .rodata layout (rebuild with npm run build:bpf)`,
      );
    }
    writeConfig(Buffer.from(koffi.view(init.ptr, init.size)), {
      sampleRatio: this._opts.sampleRatio,
      pidns: pidNamespace(),
      valueCap: this._opts.maxValueBytes,
      probes,
      countOnly: this._opts.countOnly === true,
      headerFilter: {
        request: Array.isArray(this._opts.usedHeaderNames?.request),
        response: Array.isArray(this._opts.usedHeaderNames?.response),
      },
    });
    const rc = bpf.objectLoad(obj);
    if (rc < 0) {
      const errno = -rc;
      const said = this._libbpfSays();
      this._cleanup();
      if (errno === EPERM || errno === EACCES)
        throw new UsdtError(
          `the kernel refused to load the BPF program (permission denied): ${CAPABILITY_HELP}. Kernel lockdown ` +
            'or a seccomp profile that blocks bpf() also cause this.',
        );
      const error = new UsdtError(`loading the BPF program failed (errno ${errno}): ${said}`);
      if (errno === EAGAIN) throw new InterruptedLoad(error);
      throw error;
    }
    // libbpf 1.1 remaps global data to the kernel's map only for skeletons: map the live .bss ourselves.
    const bss = bpf.findMap(obj, '.bss');
    const bssBytes = pageAligned(COUNTERS.size, this._native.libc.pageSize());
    const counters = bss === null ? null : this._native.libc.mmap(bssBytes, PROT_READ, bpf.mapFd(bss), 0);
    if (counters !== null) {
      this._countersMap = { ptr: counters, size: bssBytes };
      this._counters = Buffer.from(koffi.view(counters, COUNTERS.size));
    } else {
      this._listener.warn(
        `cannot map the BPF counters (errno ${this._native.errno()}): lost events cannot be counted`,
      );
    }
    this._ring = new RingReader(this._native, bpf.mapFd(events), this._opts.ringBytes);
    this._fillHeaderNames(obj);
  }

  /** The used header names into BPF's `header_names` map, with the directions each is used in. */
  private _fillHeaderNames(obj: Pointer): void {
    const used = this._opts.usedHeaderNames;
    if (used === undefined) return;
    const map = this._native.bpf.findMap(obj, 'header_names');
    const bits = new Map<string, number>();
    const add = (names: readonly string[] | 'all', bit: number): void => {
      if (names === 'all') return;
      for (const n of names) bits.set(n, (bits.get(n) ?? 0) | bit);
    };
    add(used.request, HEADER_FILTER.request);
    add(used.response, HEADER_FILTER.response);
    for (const [name, bit] of bits) {
      // Longer names never reach the map's lookup: BPF sends them on and user space decides.
      if (Buffer.byteLength(name) > HEADER_KEY_BYTES) continue;
      const key = Buffer.alloc(HEADER_KEY_BYTES);
      key.write(name);
      const rc = map === null ? -1 : this._native.bpf.mapUpdate(map, key, Buffer.of(bit));
      if (rc !== 0) {
        this._cleanup();
        throw new UsdtError(
          `cannot fill the BPF header-name filter (${map === null ? 'no header_names map' : `errno ${-rc}`}): ` +
            `${this._libbpfSays()}; rebuild the BPF object with \`npm run build:bpf\``,
        );
      }
    }
  }

  private _attachAll(selected: readonly Selected[], binary: string): void {
    const prog = this._native.bpf.findProgram(this._obj!, 'h2o_probe');
    if (prog === null) throw new UsdtError(`${this._opts.objectPath} has no h2o_probe program`);
    const pid = this._opts.target.kind === 'pid' ? this._opts.target.pid : -1;
    for (const { probe, sites } of selected) {
      this._native.takeMessages();
      const link = this._native.bpf.attachUsdt(prog, pid, binary, probe.provider, probe.name, probe.id);
      if (link !== null) {
        this._links.push(link);
        this._attached++;
        continue;
      }
      this._skipped++;
      const errno = this._native.errno();
      const indexed = sites.find((s) => hasIndexedArgument(s.args));
      let why: string;
      if (indexed !== undefined)
        why = `its argument spec \`${indexed.args}\` uses scale-index-base addressing, which this libbpf (1.1) cannot read`;
      else if (errno === 3) why = 'the process is gone';
      else why = `errno ${errno}: ${this._libbpfSays()}`;
      this._listener.warn(
        `cannot attach ${probe.provider}:${probe.name} (${why}); skipped, the other probes keep working`,
      );
    }
  }

  private _libbpfSays(): string {
    const lines = this._native.takeMessages().filter((l) => !/^libbpf: (loading|elf: skipping)/.test(l));
    return lines.length === 0 ? 'no detail from libbpf' : lines.slice(-3).join(' / ');
  }

  private _announceRunning(): void {
    const pids = processesOf(this._binaryId!);
    if (pids.length === 0) this._listener.info(`${this._targetName()}: none running yet; waiting for one`);
    else this._listener.info(`${this._targetName()}: running as pid ${pids.join(', ')}`);
  }

  private _openSession(pid: number): Session {
    const sessions = this._listener.sessions;
    const s: Session = {
      pid,
      sink: sessions.open(),
      decoder: new UsdtRecordDecoder(this._clock, this._decodeStats, sessions.decode.usesHeader),
      batch: [],
      startTime: processStartTime(pid),
    };
    this._sessions.set(pid, s);
    if (this._opts.target.kind === 'binary') this._listener.info(`tracing H2O pid ${pid}`);
    return s;
  }

  private readonly _onRecord = (data: Buffer, off: number, len: number): void => {
    if (len < RECORD.args) {
      this._decodeStats.badRecords++;
      return;
    }
    const pid = data.readUInt32LE(off + RECORD.pid);
    let s = this._lastSession;
    if (s === undefined || s.pid !== pid) {
      s = this._sessions.get(pid) ?? this._openSession(pid);
      this._lastSession = s;
    }
    s.decoder.decode(data, off, len, s.batch);
  };

  /** Decode and deliver up to `maxRecords` records, batch by batch; the space of each batch is freed at once. */
  private _drain(maxRecords = Infinity): number {
    const ring = this._ring;
    if (ring === undefined) return 0;
    let total = 0;
    for (;;) {
      const n = ring.drain(this._onRecord, RECORDS_PER_BATCH);
      for (const s of this._sessions.values()) {
        const unused = s.decoder.takeUnusedHeaders();
        this._countEvents(s.batch.length, unused);
        if (s.batch.length === 0) continue;
        s.sink.pushEvents(s.batch);
        s.batch.length = 0;
      }
      total += n;
      if (n < RECORDS_PER_BATCH || total >= maxRecords) break;
    }
    this._deliverSkippedHeaders();
    return total;
  }

  /** Header hits BPF dropped (names no span uses) count as events, as the ones dropped after decoding do. */
  private _deliverSkippedHeaders(): void {
    if (this._counters === undefined) return;
    const now = Number(this._counters.readBigUInt64LE(COUNTERS.skippedHeaders));
    if (now === this._skippedHeadersDelivered) return;
    this._countEvents(0, now - this._skippedHeadersDelivered);
    this._skippedHeadersDelivered = now;
  }

  /** Header events left undecoded (`unusedHeaders`) are events too, as for the JSON decoder. */
  private _countEvents(decoded: number, unusedHeaders: number): void {
    const stats = this._listener.sessions.decode.stats;
    stats.events += decoded + unusedHeaders;
    stats.unusedHeaders += unusedHeaders;
  }

  private readonly _poll = (): void => {
    if (this._done) return;
    const n = this._drain(RECORDS_PER_TURN);
    const ring = this._ring!;
    // Falling behind: go again at once rather than letting the ring fill and lose records.
    const delay = n >= RECORDS_PER_TURN || ring.pending() > ring.size / 4 ? 0 : this._opts.pollMs;
    this._pollTimer = setTimeout(this._poll, delay);
  };

  /**
   * `--binary`: an upgrade that replaces the file (new inode) would leave new processes untraced, since uprobes
   * belong to the inode. Attach to the new file too; the old links keep serving processes still running the old one.
   */
  private _checkBinaryReplaced(): void {
    const t = this._opts.target;
    if (t.kind !== 'binary' || Date.now() - this._lastBinaryCheck < 2000) return;
    this._lastBinaryCheck = Date.now();
    let id: string;
    try {
      const st = statSync(t.path);
      id = `${st.dev}:${st.ino}`;
    } catch {
      return; // mid-replacement; look again later
    }
    if (id === this._binaryId) return;
    this._binaryId = id;
    const before = this._attached;
    this._attachAll(this._selected, t.path);
    this._listener.warn(
      `${t.path} was replaced (an upgrade?): attached ${this._attached - before} probes to the new file too`,
    );
  }

  private readonly _checkProcesses = (): void => {
    if (this._done) return;
    this._checkBinaryReplaced();
    for (const s of [...this._sessions.values()]) {
      const now = processStartTime(s.pid);
      if (now !== undefined && now === s.startTime) continue;
      this._drain();
      this._sessions.delete(s.pid);
      if (this._lastSession === s) this._lastSession = undefined;
      s.sink.end();
      if (this._opts.target.kind === 'pid') {
        this._listener.warn(`H2O pid ${s.pid} exited; flushing and stopping`);
        this._end('target-exited');
        return;
      }
      this._listener.info(`H2O pid ${s.pid} exited; still tracing ${this._targetName()}`);
    }
  };

  private _end(how: UsdtEnd): void {
    if (this._done) return;
    this._done = true;
    clearTimeout(this._pollTimer);
    clearInterval(this._livenessTimer);
    this._drain();
    for (const s of this._sessions.values()) s.sink.end();
    this._sessions.clear();
    this._lastSession = undefined;
    // The counts as of now: probes stay attached until close(), and what they hit after the end is not ours.
    if (this._counters !== undefined) this._counters = Buffer.from(this._counters);
    this._finish?.(how);
  }

  /**
   * Detach the probes and free the BPF object. Separate from the end of `run()` because it is slow: the kernel
   * waits for RCU grace periods per probe, one after another (about 0.19 s each on 6.18, 9 s for H2O's 47), so
   * the CLI flushes and reports first.
   */
  close(): void {
    this._cleanup();
  }

  get attachedLinks(): number {
    return this._links.length;
  }

  private _cleanup(): void {
    for (const link of this._links.splice(0)) this._native.bpf.linkDestroy(link);
    // Counters stay readable for the exit summary: keep a copy before the mapping goes away.
    if (this._counters !== undefined) this._counters = Buffer.from(this._counters);
    if (this._countersMap !== undefined)
      this._native.libc.munmap(this._countersMap.ptr, this._countersMap.size);
    this._countersMap = undefined;
    this._ring?.close();
    this._ring = undefined;
    if (this._obj !== undefined) this._native.bpf.objectClose(this._obj);
    this._obj = undefined;
  }
}

function checkCapabilities(): void {
  let eff: bigint;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m === null) return;
    eff = BigInt(`0x${m[1]}`);
  } catch {
    return; // cannot tell: let the kernel decide and explain its answer
  }
  const has = (cap: bigint): boolean => ((eff >> cap) & 1n) === 1n;
  if (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) return;
  const missing = [has(CAP_BPF) ? '' : 'CAP_BPF', has(CAP_PERFMON) ? '' : 'CAP_PERFMON'].filter(
    (c) => c !== '',
  );
  throw new UsdtError(`attaching to USDT probes needs ${missing.join(' and ')}: ${CAPABILITY_HELP}`);
}

/** The tracer's PID namespace: records then carry pids as this process sees them (sidecars, containers). */
function pidNamespace(): { dev: bigint; ino: bigint } | undefined {
  try {
    const st = statSync('/proc/self/ns/pid', { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

function pageAligned(n: number, page: number): number {
  return Math.ceil(n / page) * page;
}

/** Field 22 of /proc/PID/stat: tells a process from a later one that got the same pid. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Pids of the running processes whose executable is the file `dev:ino`. */
function processesOf(binaryId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const st = statSync(`/proc/${entry}/exe`);
      if (`${st.dev}:${st.ino}` === binaryId) pids.push(Number(entry));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}
