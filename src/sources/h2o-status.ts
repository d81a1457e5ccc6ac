/**
 * H2O's count of trace events it could not write to h2olog clients, read from its status handler's JSON
 * (`h2olog.lost`, from the `events` module). When a client's socket buffer is full H2O drops the line and says so
 * nowhere else: the stream just lacks it, and whole requests vanish without a trace. The counter is H2O's, for all
 * its h2olog clients together, since it started; what is reported is how much it grew while we watched.
 */

export interface H2oStatusStats {
  /** Readings that gave a counter. */
  reads: number;
  /** Readings that failed (unreachable, not H2O's status JSON, timed out). */
  failures: number;
  /** Events H2O dropped since the first reading (restarts of H2O included). */
  lost: number;
  lastError: string | undefined;
}

const LOST_KEY = 'h2olog.lost';

/** The status handler's URL (as configured in h2o.conf, e.g. `/server-status`) → its JSON of the events module. */
export function statusJsonUrl(handlerUrl: string): string {
  const u = new URL(handlerUrl);
  if (!u.pathname.endsWith('/json')) u.pathname = u.pathname.replace(/\/+$/, '') + '/json';
  u.search = 'show=events';
  return u.toString();
}

export class H2oStatusPoller {
  readonly stats: H2oStatusStats = { reads: 0, failures: 0, lost: 0, lastError: undefined };
  private readonly _url: string;
  private _last: number | undefined;
  private _timer: NodeJS.Timeout | undefined;
  private _reading: Promise<void> | undefined;

  constructor(
    handlerUrl: string,
    private readonly _intervalMs: number,
    private readonly _timeoutMs = 2_000,
  ) {
    this._url = statusJsonUrl(handlerUrl);
  }

  start(): void {
    void this.read();
    this._timer = setInterval(() => void this.read(), this._intervalMs).unref();
  }

  stop(): void {
    clearInterval(this._timer);
  }

  /** One reading now (the last one at exit too); a reading in progress is joined, not doubled. */
  read(): Promise<void> {
    this._reading ??= this._read().finally(() => (this._reading = undefined));
    return this._reading;
  }

  private async _read(): Promise<void> {
    let value: unknown;
    try {
      const res = await fetch(this._url, { signal: AbortSignal.timeout(this._timeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      value = ((await res.json()) as Record<string, unknown> | null)?.[LOST_KEY];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
        throw new Error(`its JSON has no "${LOST_KEY}" (H2O's status handler, with its events module, has)`);
    } catch (err) {
      this.stats.failures++;
      const cause = (err as { cause?: { code?: unknown } }).cause?.code;
      const why = err instanceof Error ? err.message : String(err);
      this.stats.lastError = `${this._url}: ${why}${typeof cause === 'string' ? ` (${cause})` : ''}`;
      return;
    }
    this.stats.reads++;
    // A smaller value: H2O restarted and counts from 0 again.
    if (this._last !== undefined) this.stats.lost += value >= this._last ? value - this._last : value;
    this._last = value;
  }
}
