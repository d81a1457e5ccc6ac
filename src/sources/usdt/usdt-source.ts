/**
 * `--pid PID` / `--binary PATH`: attach the BPF program (native/h2o_usdt.bpf.o) to H2O's USDT probes and stream
 * its records into one event session per traced process (H2O's conn ids are per process). Every record the full
 * ring refused and every failed read of H2O's memory is counted by the program and reported.
 *
 * The steps, each in its own module: /proc checks (../bpf/procfs.ts), probe selection (probe-selection.ts), the
 * object's lifecycle (../bpf/bpf-object.ts), the poll loop (../bpf/process-poller.ts), the decoding
 * (record-decoder.ts).
 */
import { performance } from 'node:perf_hooks';
import type { DecodeStats, ProbeEvent } from '../../events/types.js';
import type { UsdtProbe } from '../../events/usdt-probes.js';
import type { Sessions, SourceSink } from '../sink.js';
import { BpfObject } from '../bpf/bpf-object.js';
import { KtimeClock } from '../bpf/clock.js';
import { BpfError, EACCES, EPERM, UPROBE_PERMISSION_HELP } from '../bpf/errors.js';
import { loadNative } from '../bpf/native.js';
import type { Native, Pointer } from '../bpf/native.js';
import { ProcessPoller, processKey } from '../bpf/process-poller.js';
import type { PollEnd, ProcessSession } from '../bpf/process-poller.js';
import {
  checkCapabilities,
  describeExecutable,
  executableFileId,
  executableOfPid,
  pidNamespace,
  processesRunning,
  ReplacedFileWatch,
} from '../bpf/procfs.js';
import { COUNTERS, CONFIG, headerNameEntries, readCounters, writeConfig } from './bpf-config.js';
import type { BpfCounters } from './bpf-config.js';
import type { UsdtTarget } from './defaults.js';
import { readUsdtNotes } from './elf-notes.js';
import { selectProbes } from './probe-selection.js';
import type { SelectedProbe } from './probe-selection.js';
import { newUsdtDecodeStats, RECORD, UsdtRecordDecoder } from './record-decoder.js';
import type { UsdtDecodeStats } from './record-decoder.js';

/** Something the user must fix; the message says what. The CLI prints it and exits 1. */

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

/** What `closeWithin()` did. */
export interface DetachResult {
  readonly detached: number;
  /** Still attached at the deadline: the kernel detaches them as the process exits, as slowly. */
  readonly remaining: number;
  readonly ms: number;
}

const ESRCH = 3;
const NO_COUNTS: BpfCounters = {
  emitted: 0,
  lost: 0,
  readFailures: 0,
  truncated: 0,
  sampledOut: 0,
  skippedHeaders: 0,
  hits: 0,
};

export class UsdtSource {
  private _stopRequested = false;
  private readonly _native: Native;
  private readonly _clock: KtimeClock;
  private readonly _decodeStats = newUsdtDecodeStats();
  private _obj: BpfObject | undefined;
  private _prog: Pointer | undefined;
  private _poller: ProcessPoller | undefined;
  /** BPF's counters: the live mapping while attached, a copy once the run ended. */
  private _counters: Buffer | undefined;
  private _skippedHeadersDelivered = 0;
  private _selected: readonly SelectedProbe[] = [];
  private _attached = 0;
  private _skipped = 0;
  private _binaryWatch: ReplacedFileWatch | undefined;

  constructor(
    private readonly _opts: UsdtSourceOptions,
    private readonly _listener: UsdtSourceListener,
  ) {
    this._native = loadNative();
    const { realtime, monotonic } = this._native.libc.clocks();
    this._clock = new KtimeClock(realtime, monotonic);
  }

  /** Attach, then stream until stopped (SIGTERM) or, with `--pid`, until the process exits. */
  async run(): Promise<PollEnd> {
    // Stopped before it ran (a signal during start-up): nothing to attach.
    if (this._stopRequested) return 'stopped';
    checkCapabilities('attaching to USDT probes');
    const binary = this._executable();
    this._selected = this._select(binary);
    let poller: ProcessPoller;
    try {
      const obj = this._load();
      this._obj = obj;
      this._counters = this._mapCounters(obj);
      const ring = obj.ring('events', this._opts.ringBytes);
      this._fillHeaderNames(obj);
      this._prog = obj.program('h2o_probe');
      this._attachAll(binary);
      if (this._attached === 0)
        throw new BpfError(`no probe could be attached to ${this._targetName()}; see the warnings above`);
      poller = new ProcessPoller(
        {
          ring,
          pollMs: this._opts.pollMs,
          pid: this._opts.target.kind === 'pid' ? this._opts.target.pid : undefined,
          pidOffset: RECORD.pid,
          minRecordBytes: RECORD.args,
          targetName: this._targetName(),
        },
        this._pollerListener,
      );
    } catch (err) {
      this.close();
      throw err;
    }
    this._listener.info(
      `attached ${this._attached} probe${this._attached === 1 ? '' : 's'} to ${this._targetName()}` +
        (this._skipped > 0 ? ` (${this._skipped} skipped)` : '') +
        `, ring buffer ${this._opts.ringBytes >> 20} MiB`,
    );
    if (this._binaryWatch !== undefined) this._announceRunning(this._binaryWatch);
    this._poller = poller;
    const end = await poller.run();
    // The counts as of now: probes stay attached until close(), and what they hit after the end is not ours.
    this._freezeCounters();
    return end;
  }

  stop(): void {
    this._stopRequested = true;
    this._poller?.stop();
  }

  stats(): UsdtStats {
    return {
      ...(this._counters === undefined ? NO_COUNTS : readCounters(this._counters)),
      probesAttached: this._attached,
      probesSkipped: this._skipped,
      processes: this._poller?.processes ?? 0,
      decode: this._decodeStats,
    };
  }

  /** At least one probe attached and its ring read (health: readiness). */
  get attached(): boolean {
    return this._poller !== undefined;
  }

  /** Probes attached and not yet detached. */
  get attachedLinks(): number {
    return this._obj?.links ?? 0;
  }

  /**
   * Detach the probes and free the BPF object. Separate from the end of `run()` because it is slow (about 0.1 s
   * per probe site: 9 s for 48 probes with 82 sites), so the CLI flushes and reports first.
   */
  close(): void {
    this._freezeCounters();
    this._obj?.close();
    this._obj = undefined;
  }

  /**
   * `close()` within `budgetMs`, without blocking the event loop: probes are detached one by one on a worker
   * thread (spans can flush meanwhile) until the budget would be exceeded; it may be overrun by at most one probe
   * slower than all before it. The object is freed only once every probe is detached.
   */
  async closeWithin(budgetMs: number): Promise<DetachResult> {
    this._freezeCounters();
    const began = performance.now();
    const obj = this._obj;
    if (obj === undefined) return { detached: 0, remaining: 0, ms: 0 };
    const detached = await obj.detachLinks(began + budgetMs);
    if (obj.links === 0 && this._obj === obj) this.close();
    return { detached, remaining: obj.links, ms: Math.round(performance.now() - began) };
  }

  private _targetName(): string {
    const t = this._opts.target;
    return t.kind === 'pid' ? `H2O pid ${t.pid}` : `every process of ${t.path}`;
  }

  /** The file whose probes are attached. */
  private _executable(): string {
    const t = this._opts.target;
    if (t.kind === 'pid') return executableOfPid(t.pid);
    this._binaryWatch = new ReplacedFileWatch(t.path, executableFileId(t.path));
    return t.path;
  }

  /** The catalogue probes the output needs that this build has; says why any is left out. */
  private _select(binary: string): readonly SelectedProbe[] {
    let selection;
    try {
      selection = selectProbes(readUsdtNotes(binary), this._opts.points);
    } catch (err) {
      throw new BpfError(
        `cannot read the probes of ${describeExecutable(binary)}: ${(err as Error).message}`,
      );
    }
    if (selection.noH2oProbes)
      throw new BpfError(
        `${describeExecutable(binary)} has no h2o USDT probes: this H2O was built without DTrace. Rebuild it ` +
          'with `cmake -DWITH_DTRACE=ON` (needs the systemtap-sdt-dev package); `h2o --version` must say ' +
          '"dtrace: YES". Or use the h2olog socket instead (--socket).',
      );
    for (const probe of selection.missing) {
      this._skipped++;
      this._listener.warn(
        `probe ${probe.provider}:${probe.name} is not in this H2O build (older or newer than the probes ` +
          'h2o-otel knows); skipped, the other probes keep working',
      );
    }
    return selection.selected;
  }

  private _load(): BpfObject {
    const probes: UsdtProbe[] = this._selected.map((s) => s.probe);
    const used = this._listener.sessions.decode.usedHeaderNames;
    return BpfObject.load(this._native, {
      path: this._opts.objectPath,
      configure: (obj) => {
        obj.setMaxEntries('events', this._opts.ringBytes);
        writeConfig(obj.rodata(CONFIG.size), {
          sampleRatio: this._opts.sampleRatio,
          pidns: pidNamespace(),
          valueCap: this._opts.maxValueBytes,
          probes,
          countOnly: this._opts.countOnly === true,
          headerFilter: {
            request: Array.isArray(used?.request),
            response: Array.isArray(used?.response),
          },
        });
      },
    });
  }

  private _mapCounters(obj: BpfObject): Buffer | undefined {
    try {
      return obj.mapGlobal('.bss', COUNTERS.size, 'the BPF counters');
    } catch (err) {
      if (!(err instanceof BpfError)) throw err;
      this._listener.warn(`${err.message}: lost events cannot be counted`);
      return undefined;
    }
  }

  /** The used header names into BPF's `header_names` map, with the directions each is used in. */
  private _fillHeaderNames(obj: BpfObject): void {
    const used = this._listener.sessions.decode.usedHeaderNames;
    if (used === undefined) return;
    for (const { key, value } of headerNameEntries(used))
      obj.updateMap('header_names', key, value, 'the BPF header-name filter');
  }

  private _attachAll(binary: string): void {
    const obj = this._obj!;
    const pid = this._opts.target.kind === 'pid' ? this._opts.target.pid : -1;
    for (const { probe, indexedArgs } of this._selected) {
      const failed = obj.attachUsdt(this._prog!, pid, binary, probe.provider, probe.name, probe.id);
      if (failed === undefined) {
        this._attached++;
        continue;
      }
      this._skipped++;
      let why: string;
      if (indexedArgs !== undefined)
        why = `its argument spec \`${indexedArgs}\` uses scale-index-base addressing, which this libbpf (1.1) cannot read`;
      else if (failed.errno === ESRCH) why = 'the process is gone';
      else if (failed.errno === EACCES || failed.errno === EPERM)
        why = `errno ${failed.errno}: ${UPROBE_PERMISSION_HELP}`;
      else why = `errno ${failed.errno}: ${failed.libbpf}`;
      this._listener.warn(
        `cannot attach ${probe.provider}:${probe.name} (${why}); skipped, the other probes keep working`,
      );
    }
  }

  private _announceRunning(watch: ReplacedFileWatch): void {
    const pids = processesRunning(watch.fileId);
    if (pids.length === 0) this._listener.info(`${this._targetName()}: none running yet; waiting for one`);
    else this._listener.info(`${this._targetName()}: running as pid ${pids.join(', ')}`);
  }

  private _freezeCounters(): void {
    if (this._counters !== undefined) this._counters = Buffer.from(this._counters);
  }

  private readonly _pollerListener = {
    open: (pid: number): ProcessSession => {
      const { sessions } = this._listener;
      const decoder = new UsdtRecordDecoder(this._clock, this._decodeStats, sessions.decode.usesHeader);
      // Keyed by process: the request probe, traced beside these probes (hybrid), shares the session.
      return new UsdtProcessSession(decoder, sessions.open(processKey(pid)), sessions.decode.stats);
    },
    badRecord: (): void => void this._decodeStats.badRecords++,
    /** Header hits BPF dropped (names no span uses) count as events, as the ones dropped after decoding do. */
    drained: (): void => {
      if (this._counters === undefined) return;
      const now = Number(this._counters.readBigUInt64LE(COUNTERS.skippedHeaders));
      if (now === this._skippedHeadersDelivered) return;
      countEvents(this._listener.sessions.decode.stats, 0, now - this._skippedHeadersDelivered);
      this._skippedHeadersDelivered = now;
    },
    /**
     * `--binary`: an upgrade that replaces the file (new inode) would leave new processes untraced, since uprobes
     * belong to the inode. Attach to the new file too; the old links keep serving processes still running the
     * old one.
     */
    tick: (): void => {
      const { realtime, monotonic } = this._native.libc.clocks();
      this._clock.set(realtime, monotonic);
      const watch = this._binaryWatch;
      if (watch === undefined || !watch.replaced(Date.now())) return;
      const before = this._attached;
      this._attachAll(watch.path);
      this._listener.warn(
        `${watch.path} was replaced (an upgrade?): attached ${this._attached - before} probes to the new file too`,
      );
    },
    info: (m: string): void => this._listener.info(m),
    warn: (m: string): void => this._listener.warn(m),
  };
}

/** One traced process: its records decoded into an event session of its own. */
class UsdtProcessSession implements ProcessSession {
  /** Reused for every drain: one array per process, not per batch. */
  private readonly _batch: ProbeEvent[] = [];

  constructor(
    private readonly _decoder: UsdtRecordDecoder,
    private readonly _sink: SourceSink,
    private readonly _stats: DecodeStats,
  ) {}

  record(data: Buffer, off: number, len: number): void {
    this._decoder.decode(data, off, len, this._batch);
  }

  flush(): void {
    countEvents(this._stats, this._batch.length, this._decoder.takeUnusedHeaders());
    if (this._batch.length === 0) return;
    this._sink.pushEvents(this._batch);
    this._batch.length = 0;
  }

  end(): void {
    this._sink.end();
  }
}

/** Header events left undecoded are events too, as for the JSON decoder. */
function countEvents(stats: DecodeStats, decoded: number, unusedHeaders: number): void {
  stats.events += decoded + unusedHeaders;
  stats.unusedHeaders += unusedHeaders;
}
