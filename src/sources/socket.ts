/**
 * The h2olog unix socket of a running H2O (`h2olog: ON|appdata` on a host with a unix listener).
 * Handshake: one HTTP/1.0 GET of /.well-known/h2olog with the subscription in the query; H2O answers
 * `HTTP/1.1 200 OK` and then streams JSON lines until either side closes. One subscriber per process: H2O aborts
 * when more than 32 attach. When H2O restarts, each connection is a new id space; h2o-otel connects again as soon
 * as the socket is back (the path is watched; a backoff bounds the wait), since H2O's requests meanwhile are lost.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { PROBE_PATH } from '../events/catalogue.js';
import { JsonLinesSession } from './json-lines.js';
import { PathWatch } from './path-watch.js';
import type { Sessions } from './sink.js';

export interface SocketSourceOptions {
  readonly path: string;
  /** `module:name` points to subscribe to (never empty: no `trace=` means everything). */
  readonly trace: readonly string[];
  readonly sampleRatio: number | undefined;
  readonly sni: readonly string[];
  readonly addresses: readonly string[];
  /** Ask for header names and values (server must be `h2olog: appdata`). */
  readonly applicationData: boolean;
  /** Reconnect after a failure or a closed stream; otherwise the first one ends the source. */
  readonly reconnect: boolean;
  /** Waits between failed attempts: doubling (with jitter) from the minimum to the maximum. */
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
}

/** How long h2o-otel had no subscription after H2O closed the stream (a restart), until it had one again. */
export interface SocketStats {
  /** Subscriptions made again after a stream ended. */
  readonly reconnects: number;
  readonly lastGapMs: number | undefined;
  readonly totalGapMs: number;
}

export interface SocketSourceListener {
  /** Each accepted subscription is a new session (a new id space). */
  readonly sessions: Sessions;
  info(message: string): void;
  warn(message: string): void;
}

/** A failure that reconnecting cannot fix (H2O refused the subscription). */
export class SubscriptionError extends Error {}

export function subscriptionQuery(o: SocketSourceOptions): string {
  const params: string[] = o.trace.map((t) => `trace=${encodeURIComponent(t)}`);
  if (o.sampleRatio !== undefined) params.push(`sample-ratio=${o.sampleRatio}`);
  for (const s of o.sni) params.push(`sni=${encodeURIComponent(s)}`);
  for (const a of o.addresses) params.push(`address=${encodeURIComponent(a)}`);
  if (o.applicationData) params.push('application-data=1');
  return params.join('&');
}

/** What to tell the user for a connect error. */
export function explainConnectError(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `no socket at ${path}: is H2O running, with a unix listener at this path on a host that has \`h2olog: appdata\`? (see README "Point it at H2O")`;
    case 'ECONNREFUSED':
      return `nothing is listening on ${path}: the socket file is there but H2O is not (stopped, or restarting)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${path}: run h2o-otel as a user that may connect to it (the listener's owner/group/permission in h2o.conf)`;
    case 'ENOTSOCK':
      return `${path} is not a unix socket: point --socket at the h2olog listener of H2O`;
    default:
      return `cannot connect to ${path}: ${err.message}`;
  }
}

const HEADER_END = Buffer.from('\r\n\r\n');
const PROBE_WAIT_MS = 3_000;
const MAX_HEADER_BYTES = 64 * 1024;
/**
 * After the socket's name changed, failed attempts are retried this often for this long instead of backing off:
 * H2O binds the path before it listens, and the one event seen may come before it accepts.
 */
const SETTLE_RETRY_MS = 20;
export const SETTLE_WINDOW_MS = 1_000;
/** A stream that lasted this long resets the backoff. */
const HEALTHY_STREAM_MS = 1_000;

/** The wait after `failures` failed attempts in a row (0: the first): doubling, with jitter, up to the maximum. */
export function backoffMs(failures: number, minMs: number, maxMs: number, random = Math.random): number {
  return Math.min(maxMs, Math.round(minMs * 2 ** failures * (1 + random())));
}

export class H2ologSocketSource {
  private readonly _abort = new AbortController();
  private _socket: net.Socket | undefined;
  private _lastWarning = '';
  private _lastWarningAt = 0;
  /** When the last subscribed stream ended, until the next subscription. */
  private _lostAt: number | undefined;
  private _subscribed = false;
  private readonly _stats = { reconnects: 0, lastGapMs: undefined as number | undefined, totalGapMs: 0 };

  constructor(
    private readonly _opts: SocketSourceOptions,
    private readonly _listener: SocketSourceListener,
  ) {}

  /** Runs until stopped, or (without reconnect) until the first disconnect. Rejects on a refused subscription. */
  async run(): Promise<void> {
    const signal = this._abort.signal;
    const watch = this._opts.reconnect ? new PathWatch(this._opts.path) : undefined;
    let failures = 0;
    try {
      while (!signal.aborted) {
        const began = performance.now();
        let delay: number;
        try {
          await this._connectOnce();
          // Again at once after a stream ends; but streams that keep ending at once (H2O closing every
          // subscription) back off like failures, rather than becoming a busy loop.
          const healthy = performance.now() - began >= HEALTHY_STREAM_MS;
          delay = healthy || failures === 0 ? 0 : this._backoff(failures - 1);
          failures = healthy ? 0 : failures + 1;
        } catch (err) {
          if (signal.aborted) return;
          if (watch === undefined || err instanceof SubscriptionError) throw err;
          this._warnThrottled((err as Error).message);
          delay =
            performance.now() - watch.changedAt < SETTLE_WINDOW_MS
              ? SETTLE_RETRY_MS
              : this._backoff(failures++);
        }
        if (watch === undefined) return;
        await watch.wait(delay, signal);
      }
    } finally {
      watch?.close();
    }
  }

  stop(): void {
    this._abort.abort();
    this._socket?.destroy();
  }

  /** H2O accepted the subscription and the stream is open: events flow (health: readiness). */
  get subscribed(): boolean {
    return this._subscribed;
  }

  /** Why the last attempt to subscribe failed, while it is not fixed. */
  get lastProblem(): string | undefined {
    return this._lastWarning === '' ? undefined : this._lastWarning;
  }

  /** The counters; a gap still going on (H2O not back yet) counts in `totalGapMs` up to now. */
  get stats(): SocketStats {
    if (this._lostAt === undefined) return this._stats;
    return {
      ...this._stats,
      totalGapMs: this._stats.totalGapMs + Math.round(performance.now() - this._lostAt),
    };
  }

  /** Connect, subscribe, stream until the connection ends. Resolves when a stream ends; rejects to be retried. */
  private _connectOnce(): Promise<void> {
    if (this._abort.signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const socket = net.createConnection({ path: this._opts.path });
      this._socket = socket;
      let header: Buffer[] = [];
      let headerBytes = 0;
      let sink: JsonLinesSession | undefined;
      let refusal: Buffer[] | undefined;
      let refusalStatus = '';

      socket.on('connect', () => {
        socket.write(`GET /.well-known/h2olog?${subscriptionQuery(this._opts)} HTTP/1.0\r\n\r\n`);
      });
      socket.on('data', (chunk: Buffer) => {
        if (sink !== undefined) return sink.push(chunk);
        if (refusal !== undefined) return void refusal.push(chunk);
        header.push(chunk);
        headerBytes += chunk.length;
        const all = Buffer.concat(header, headerBytes);
        const end = all.indexOf(HEADER_END);
        if (end < 0) {
          if (headerBytes > MAX_HEADER_BYTES)
            socket.destroy(new Error(`${this._opts.path} did not answer like H2O`));
          return;
        }
        header = [];
        const statusLine = all.subarray(0, all.indexOf('\r\n')).toString('latin1');
        const rest = all.subarray(end + HEADER_END.length);
        if (/^HTTP\/1\.\d 200\b/.test(statusLine)) {
          sink = new JsonLinesSession(this._listener.sessions);
          this._subscribed = true;
          this._lastWarning = '';
          const gap = this._endGap();
          this._listener.info(
            `subscribed to ${this._opts.path} (${this._opts.trace.length} trace points)` +
              (gap === undefined ? '' : `, ${gap} ms after the last stream ended`),
          );
          if (rest.length > 0) sink.push(rest);
          else if (this._opts.applicationData) this._probeAppData(socket);
        } else {
          refusalStatus = statusLine;
          refusal = [rest];
        }
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (sink !== undefined) return; // 'close' follows and ends the session
        reject(new Error(err.code === undefined ? err.message : explainConnectError(this._opts.path, err)));
      });
      socket.on('close', () => {
        this._socket = undefined;
        this._subscribed = false;
        if (refusal !== undefined) {
          const body = Buffer.concat(refusal).toString('utf8').trim();
          reject(new SubscriptionError(explainRefusal(this._opts.path, refusalStatus, body)));
          return;
        }
        if (sink === undefined) {
          reject(new Error(`${this._opts.path} closed the connection before answering the h2olog request`));
          return;
        }
        sink.end();
        if (!this._abort.signal.aborted) {
          this._lostAt = performance.now();
          const next = this._opts.reconnect ? '; reconnecting' : '';
          this._listener.warn(
            `H2O closed the h2olog stream at ${this._opts.path} (restart or shutdown?)${next}`,
          );
        }
        resolve();
      });
    });
  }

  /**
   * H2O set to `h2olog: ON` sends a client that asked for application data nothing at all, not even lengths. To
   * tell that from an idle server, make one plain request to the same listener (it is not a subscription, so it
   * takes no h2olog slot): a working subscription sees its events; a silent one has the misconfiguration.
   */
  private _probeAppData(subscription: net.Socket): void {
    let seen = false;
    subscription.once('data', () => (seen = true));
    const probe = net.createConnection({ path: this._opts.path });
    probe.on('connect', () => probe.end(`GET ${PROBE_PATH} HTTP/1.0\r\n\r\n`));
    probe.on('error', () => probe.destroy());
    probe.resume();
    setTimeout(() => {
      probe.destroy();
      if (!seen && !subscription.destroyed) {
        this._listener.warn(
          `H2O at ${this._opts.path} sends no events, not even for h2o-otel's own probe request: it is probably ` +
            'configured `h2olog: ON`, which sends nothing to a client asking for application data. Set ' +
            '`h2olog: appdata` on that host (header names and values are needed for useful spans), or run with ' +
            '--no-application-data.',
        );
      }
    }, PROBE_WAIT_MS).unref();
  }

  private _backoff(failures: number): number {
    return backoffMs(failures, this._opts.minBackoffMs, this._opts.maxBackoffMs);
  }

  /** A subscription again after a lost stream: how long it took, in ms (undefined for the first one). */
  private _endGap(): number | undefined {
    if (this._lostAt === undefined) return undefined;
    const gap = Math.round(performance.now() - this._lostAt);
    this._lostAt = undefined;
    this._stats.reconnects++;
    this._stats.lastGapMs = gap;
    this._stats.totalGapMs += gap;
    return gap;
  }

  /** Say each distinct problem once, then remind at most every 30 s while it lasts. */
  private _warnThrottled(message: string): void {
    const now = Date.now();
    if (message === this._lastWarning && now - this._lastWarningAt < 30_000) return;
    this._lastWarning = message;
    this._lastWarningAt = now;
    this._listener.warn(this._opts.reconnect ? `${message}; retrying` : message);
  }
}

function explainRefusal(path: string, status: string, body: string): string {
  const detail = body.length > 0 ? `: ${body.slice(0, 200)}` : '';
  if (/ 404\b/.test(status)) {
    return `H2O at ${path} has no h2olog handler (${status}): set \`h2olog: appdata\` on the host that owns this unix listener`;
  }
  return `H2O at ${path} refused the h2olog subscription (${status})${detail}`;
}
