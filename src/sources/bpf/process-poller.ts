/**
 * The read side of a BPF source. The ring buffer is drained on a timer (default every 10 ms): the program never
 * wakes the reader, because a wakeup per event triples what each probe hit costs H2O. Each record goes to the
 * session of the process that wrote it, since H2O's ids mean something only within one process; a session ends
 * when its process exits (with `--pid`, so does the run).
 */
import { processStartTime } from './procfs.js';
import type { RingReader } from './ring.js';

/** What a BPF source makes of one traced process's records. */
export interface ProcessSession {
  /** One record of this process: `len` bytes at `off` in `data`, valid only during the call. */
  record(data: Buffer, off: number, len: number): void;
  /** Hand on what the records since the last flush made. */
  flush(): void;
  /** The process exited, or tracing stopped: what is still open completes. */
  end(): void;
}

export interface ProcessPollerOptions {
  readonly ring: Pick<RingReader, 'drain' | 'pending' | 'size'>;
  readonly pollMs: number;
  /** `--pid`: the one process traced, whose exit ends the run. Undefined: every process running a binary. */
  readonly pid: number | undefined;
  /** Where every record holds the u32 pid of its process. */
  readonly pidOffset: number;
  /** Shorter records cannot say whose they are: `badRecord()`. */
  readonly minRecordBytes: number;
  /** For messages, e.g. `every process of /usr/bin/h2o`. */
  readonly targetName: string;
}

export interface ProcessPollerListener {
  /** The session of a process seen for the first time. */
  open(pid: number): ProcessSession;
  badRecord(): void;
  /** After every drain, e.g. to read counters BPF keeps beside the ring. */
  drained(): void;
  /** On the liveness timer, before the processes are looked at. */
  tick(): void;
  info(message: string): void;
  warn(message: string): void;
}

export type PollEnd = 'stopped' | 'target-exited';

/** The session key of a traced process, shared by every BPF source tracing it (`Sessions.open`). */
export function processKey(pid: number): string {
  return `pid:${pid}`;
}

/**
 * Records are handed on in small batches: what they decode to then dies young (cheap scavenges). Batches of 256k
 * kept every event of a batch alive at once, promoted them to the old generation and made GC 40% of the work.
 */
const RECORDS_PER_BATCH = 1_024;
/** Records per timer turn at most, so exports and timers still run while H2O keeps the ring full. */
const RECORDS_PER_TURN = 65_536;
const LIVENESS_MS = 250;

interface Traced {
  readonly pid: number;
  readonly session: ProcessSession;
  readonly startTime: string | undefined;
}

export class ProcessPoller {
  private readonly _traced = new Map<number, Traced>();
  /** Records come in runs from one process: the last one's session, without a map lookup. */
  private _last: Traced | undefined;
  private _pollTimer: NodeJS.Timeout | undefined;
  private _livenessTimer: NodeJS.Timeout | undefined;
  private _finish: ((end: PollEnd) => void) | undefined;
  private _done = false;

  constructor(
    private readonly _opts: ProcessPollerOptions,
    private readonly _listener: ProcessPollerListener,
  ) {}

  /** Poll until `stop()` or, with a pid, until that process exits; every session is ended by then. */
  run(): Promise<PollEnd> {
    const ended = new Promise<PollEnd>((resolve) => (this._finish = resolve));
    this._pollTimer = setTimeout(this._poll, this._opts.pollMs);
    this._livenessTimer = setInterval(this._checkProcesses, LIVENESS_MS);
    if (this._opts.pid !== undefined) this._open(this._opts.pid);
    return ended;
  }

  stop(): void {
    this._end('stopped');
  }

  /** Processes with a session now. */
  get processes(): number {
    return this._traced.size;
  }

  private _open(pid: number): Traced {
    const t: Traced = { pid, session: this._listener.open(pid), startTime: processStartTime(pid) };
    this._traced.set(pid, t);
    if (this._opts.pid === undefined) this._listener.info(`tracing H2O pid ${pid}`);
    return t;
  }

  private readonly _onRecord = (data: Buffer, off: number, len: number): void => {
    if (len < this._opts.minRecordBytes) {
      this._listener.badRecord();
      return;
    }
    const pid = data.readUInt32LE(off + this._opts.pidOffset);
    let t = this._last;
    if (t === undefined || t.pid !== pid) {
      t = this._traced.get(pid) ?? this._open(pid);
      this._last = t;
    }
    t.session.record(data, off, len);
  };

  /** Read up to `maxRecords` records, batch by batch; the space of each batch is freed at once. */
  private _drain(maxRecords = Infinity): number {
    const ring = this._opts.ring;
    let total = 0;
    for (;;) {
      const n = ring.drain(this._onRecord, RECORDS_PER_BATCH);
      for (const t of this._traced.values()) t.session.flush();
      total += n;
      if (n < RECORDS_PER_BATCH || total >= maxRecords) break;
    }
    this._listener.drained();
    return total;
  }

  private readonly _poll = (): void => {
    if (this._done) return;
    const n = this._drain(RECORDS_PER_TURN);
    const ring = this._opts.ring;
    // Falling behind: go again at once rather than letting the ring fill and lose records.
    const delay = n >= RECORDS_PER_TURN || ring.pending() > ring.size / 4 ? 0 : this._opts.pollMs;
    this._pollTimer = setTimeout(this._poll, delay);
  };

  private readonly _checkProcesses = (): void => {
    if (this._done) return;
    this._listener.tick();
    for (const t of [...this._traced.values()]) {
      const now = processStartTime(t.pid);
      if (now !== undefined && now === t.startTime) continue;
      this._drain();
      this._traced.delete(t.pid);
      if (this._last === t) this._last = undefined;
      t.session.end();
      if (this._opts.pid !== undefined) {
        this._listener.warn(`H2O pid ${t.pid} exited; flushing and stopping`);
        this._end('target-exited');
        return;
      }
      this._listener.info(`H2O pid ${t.pid} exited; still tracing ${this._opts.targetName}`);
    }
  };

  private _end(how: PollEnd): void {
    if (this._done) return;
    this._done = true;
    clearTimeout(this._pollTimer);
    clearInterval(this._livenessTimer);
    this._drain();
    for (const t of this._traced.values()) t.session.end();
    this._traced.clear();
    this._last = undefined;
    this._finish?.(how);
  }
}
