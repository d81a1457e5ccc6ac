/**
 * `--bpf request` (the default when the layouts can be had): one uprobe at `h2o_dispose_request` of the traced
 * H2O, reading each finished request from H2O's structs at offsets found by field name in its debug info, and
 * pushing request and connection records into one session per traced process (H2O's conn ids are per process).
 *
 * The steps, each in its own module: the debug info (debug-info.ts), its BTF (btf-cache.ts), the layout
 * (layout.ts), the program (request-probe.ts), the poll loop (../bpf/process-poller.ts), the records
 * (request-session.ts).
 */
import { performance } from 'node:perf_hooks';
import type { Sessions } from '../sink.js';
import { KtimeClock } from '../bpf/clock.js';
import { loadNative } from '../bpf/native.js';
import { ProcessPoller, processKey } from '../bpf/process-poller.js';
import type { PollEnd, ProcessSession } from '../bpf/process-poller.js';
import {
  describeExecutable,
  executableFileId,
  executableOfPid,
  pidNamespace,
  processesRunning,
  ReplacedFileWatch,
} from '../bpf/procfs.js';
import type { UsdtTarget } from '../usdt/defaults.js';
import type { DetachResult, UsdtStats } from '../usdt/usdt-source.js';
import { btfFor } from './btf-cache.js';
import { findDebugInfo } from './debug-info.js';
import { type Layout, readLayout } from './layout.js';
import { DISPOSE_FUNCTION, RequestProbe } from './request-probe.js';
import { RECORD } from './request-record.js';
import { CONFIG_FIELDS, OPTIONAL_CONFIG_FIELDS, type RequestProbeCounters } from './request-config.js';
import { newRequestSessionStats, RequestProcessSession } from './request-session.js';
import type { RequestSessionOptions } from './request-session.js';

export interface RequestLayoutOptions {
  /** `--debug-file`: the separate debug file of the binary. */
  readonly debugFile: string | undefined;
  /** Where BTF made from debug info is kept, per build-id. */
  readonly btfCacheDir: string;
}

/** A build's layout of the fields the probe reads, and where it came from (for the user). */
export interface RequestLayout {
  readonly layout: Layout;
  readonly describe: string;
}

/** The layout of `binary`'s fields, from its debug info; a BpfError says why it cannot be had. */
export async function requestLayoutFor(binary: string, opts: RequestLayoutOptions): Promise<RequestLayout> {
  const debug = findDebugInfo(binary, { debugFile: opts.debugFile });
  const btf = await btfFor(debug, { cacheDir: opts.btfCacheDir });
  const layout = readLayout(btf.path, CONFIG_FIELDS, OPTIONAL_CONFIG_FIELDS);
  const lacks = OPTIONAL_CONFIG_FIELDS.filter((p) => layout[p] === undefined);
  const where = debug.from === 'binary' ? 'its own debug info' : `debug info in ${debug.path}`;
  return {
    layout,
    describe:
      `struct layouts from ${where}${btf.reused ? ' (cached)' : ''}` +
      (lacks.length > 0 ? `; this build lacks ${lacks.join(', ')}` : ''),
  };
}

export interface RequestSourceOptions extends RequestLayoutOptions, RequestSessionOptions {
  readonly target: UsdtTarget;
  /** Ring buffer bytes: a power of two, a multiple of the page size. */
  readonly ringBytes: number;
  readonly pollMs: number;
  readonly sampleRatio: number | undefined;
  readonly objectPath?: string;
}

export interface RequestSourceListener {
  readonly sessions: Sessions;
  info(message: string): void;
  warn(message: string): void;
}

/** One file's probe and the poller of its ring (a second file after an upgrade replaced the first). */
interface Attachment {
  readonly probe: RequestProbe;
  readonly poller: ProcessPoller;
  readonly ended: Promise<PollEnd>;
}

const TICK_IDLE_MS = 1000;
const REPLACEMENT_RETRY_MS = 60_000;
const REPLACEMENT_RETRY_EVERY_MS = 5_000;

export class RequestSource {
  private readonly _attachments: Attachment[] = [];
  private readonly _sessions = new Set<RequestProcessSession>();
  private readonly _sessionStats = newRequestSessionStats();
  private readonly _clock: KtimeClock;
  private readonly _native = loadNative();
  private readonly _binary: string;
  private _binaryWatch: ReplacedFileWatch | undefined;
  private _replacing = false;
  private _stopped = false;
  private _lastIdleTick = 0;
  private _stop: (() => void) | undefined;
  private _badRecords = 0;
  /** A replaced binary that could not be traced yet: tried again at `next`, given up at `until`. */
  private _retry: { readonly until: number; next: number } | undefined;

  /** Attaches to the target (layout already resolved for its file); throws a BpfError saying why not. */
  constructor(
    private readonly _opts: RequestSourceOptions,
    layout: Layout,
    private readonly _listener: RequestSourceListener,
  ) {
    const { realtime, monotonic } = this._native.libc.clocks();
    this._clock = new KtimeClock(realtime, monotonic);
    const t = _opts.target;
    if (t.kind === 'pid') this._binary = executableOfPid(t.pid);
    else {
      this._binaryWatch = new ReplacedFileWatch(t.path, executableFileId(t.path));
      this._binary = t.path;
    }
    this._attach(this._binary, layout);
  }

  /** Stream until stopped (SIGTERM) or, with `--pid`, until the process exits. */
  async run(): Promise<PollEnd> {
    // Stopped before it ran (a signal during start-up): the pollers have ended already.
    if (this._stopped) return 'stopped';
    const t = this._opts.target;
    const watch = this._binaryWatch;
    this._listener.info(
      `attached 1 uprobe at ${DISPOSE_FUNCTION} of ${describeExecutable(this._binary)} (one per request), ring ` +
        `buffer ${this._opts.ringBytes >> 20} MiB`,
    );
    if (watch !== undefined) {
      const pids = processesRunning(watch.fileId);
      this._listener.info(
        `every process of ${watch.path}: ` +
          (pids.length === 0 ? 'none running yet; waiting for one' : `running as pid ${pids.join(', ')}`),
      );
    }
    const stopped = new Promise<PollEnd>((resolve) => (this._stop = () => resolve('stopped')));
    // --pid: the process's exit ends the run; --binary: only a stop does.
    const end = await Promise.race(t.kind === 'pid' ? [stopped, this._attachments[0]!.ended] : [stopped]);
    this._endAll();
    return end;
  }

  stop(): void {
    this._stopped = true;
    this._endAll();
    this._stop?.();
  }

  /** The uprobe is attached and its ring read until stopped (health: readiness). */
  get attached(): boolean {
    return this._attachments.length > 0 && !this._stopped;
  }

  /** In the shape of the USDT source's, so status lines and metrics read the same. */
  stats(): UsdtStats {
    const c: RequestProbeCounters = {
      hits: 0,
      requests: 0,
      lost: 0,
      lostHeaders: 0,
      sampledOut: 0,
      skippedHeaders: 0,
    };
    for (const a of this._attachments) {
      const n = a.probe.counters();
      for (const k of Object.keys(c) as (keyof RequestProbeCounters)[]) c[k] += n[k];
    }
    let processes = 0;
    for (const a of this._attachments) processes += a.poller.processes;
    return {
      hits: c.hits,
      emitted: c.requests,
      lost: c.lost + c.lostHeaders,
      readFailures: 0,
      truncated: this._sessionStats.truncated,
      sampledOut: c.sampledOut,
      skippedHeaders: c.skippedHeaders,
      probesAttached: this._attachments.length,
      probesSkipped: 0,
      processes,
      decode: { records: this._sessionStats.records, badRecords: this._badRecords, unmappedQuicEvents: 0 },
    };
  }

  /** Detach: one uprobe per file, so no budget is needed (the USDT source's takes one). */
  closeWithin(): Promise<DetachResult> {
    const began = performance.now();
    this.close();
    return Promise.resolve({
      detached: this._attachments.length,
      remaining: 0,
      ms: Math.round(performance.now() - began),
    });
  }

  close(): void {
    // A replacement's layout may still be on its way: it must not attach after this.
    this._stopped = true;
    this._endAll();
    for (const a of this._attachments) a.probe.close();
  }

  private _attach(binary: string, layout: Layout): void {
    const t = this._opts.target;
    const probe = RequestProbe.attach({
      binary,
      pid: t.kind === 'pid' ? t.pid : -1,
      layout,
      usedHeaderNames: this._listener.sessions.decode.usedHeaderNames,
      objectPath: this._opts.objectPath,
      ringBytes: this._opts.ringBytes,
      sampleRatio: this._opts.sampleRatio,
      pidns: pidNamespace(),
    });
    const poller = new ProcessPoller(
      {
        ring: probe.ring,
        pollMs: this._opts.pollMs,
        pid: t.kind === 'pid' ? t.pid : undefined,
        pidOffset: RECORD.pid,
        minRecordBytes: RECORD.pid + 4,
        targetName: t.kind === 'pid' ? `H2O pid ${t.pid}` : `every process of ${t.path}`,
      },
      this._pollerListener,
    );
    this._attachments.push({ probe, poller, ended: poller.run() });
  }

  private _endAll(): void {
    for (const a of this._attachments) a.poller.stop();
  }

  /**
   * `--binary` replaced by an upgrade: uprobes belong to the old file, so attach to the new one too. An upgrade may
   * be half done (the binary in place, its debug symbols not yet): tried again every few seconds for a minute.
   */
  private async _followReplacement(watch: ReplacedFileWatch, now: number): Promise<void> {
    this._replacing = true;
    const first = this._retry === undefined;
    this._retry ??= { until: now + REPLACEMENT_RETRY_MS, next: 0 };
    try {
      const { layout, describe } = await requestLayoutFor(watch.path, this._opts);
      if (this._stopped) return;
      this._attach(watch.path, layout);
      this._retry = undefined;
      this._listener.warn(
        `${watch.path} was replaced (an upgrade?): attached the request probe to the new file too (${describe})`,
      );
    } catch (err) {
      // Anything, not only what h2o-otel foresaw: a file half written reads as a broken ELF or BTF.
      const why = err instanceof Error ? err.message : String(err);
      const retry = this._retry;
      if (retry !== undefined && now + REPLACEMENT_RETRY_EVERY_MS < retry.until) {
        retry.next = now + REPLACEMENT_RETRY_EVERY_MS;
        if (first)
          this._listener.warn(
            `${watch.path} was replaced, and its new build cannot be traced yet (${why}); retrying`,
          );
      } else {
        this._retry = undefined;
        this._listener.warn(`${watch.path} was replaced, and its new build cannot be traced: ${why}`);
      }
    } finally {
      this._replacing = false;
    }
  }

  private readonly _pollerListener = {
    open: (pid: number): ProcessSession => {
      const { sessions } = this._listener;
      const session = new RequestProcessSession(
        this._clock,
        sessions.open(processKey(pid)),
        sessions.decode.stats,
        this._sessionStats,
        this._opts,
      );
      this._sessions.add(session);
      return session;
    },
    badRecord: (): void => void this._badRecords++,
    drained: (): void => {},
    tick: (): void => {
      const { realtime, monotonic } = this._native.libc.clocks();
      this._clock.set(realtime, monotonic);
      const now = Date.now();
      if (now - this._lastIdleTick >= TICK_IDLE_MS) {
        this._lastIdleTick = now;
        for (const s of this._sessions) {
          if (s.ended) this._sessions.delete(s);
          else s.tick(now);
        }
      }
      const watch = this._binaryWatch;
      if (watch === undefined || this._replacing || this._stopped) return;
      const retry = this._retry;
      if (retry !== undefined ? now >= retry.next : watch.replaced(now))
        void this._followReplacement(watch, now);
    },
    info: (m: string): void => this._listener.info(m),
    warn: (m: string): void => this._listener.warn(m),
  };
}
