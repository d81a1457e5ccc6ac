/**
 * What /healthz and /readyz answer, decided from plain facts read when a probe comes: a heartbeat the live loop
 * stamps, whether the source feeds the pipeline, since when exports fail, and whether shutdown began.
 */

/** Whether the source feeds the pipeline now, and how to say so. */
export interface HealthOptions {
  /** Undefined: no health server. */
  readonly port: number | undefined;
  readonly host: string;
  /** /readyz fails once exports have failed for this long; 0: never for exports. */
  readonly exportFailureMs: number;
}

export interface SourceReadiness {
  readonly ready: boolean;
  readonly detail: string;
}

/** Cheap getters, read once per probe. */
export interface HealthFacts {
  source(): SourceReadiness;
  /** Epoch ms since when every export attempt failed; undefined while the last one succeeded (or none ran). */
  exportFailingSince(): number | undefined;
  lastExportError(): string | undefined;
}

export interface HealthLimits {
  /** /healthz fails once the heartbeat is this old. */
  readonly staleAfterMs: number;
  /** /readyz fails once exports have failed for this long; 0: exports never make it fail. */
  readonly exportFailureMs: number;
}

/** An answer: 200 when `ok`, else 503, with `body` as JSON. */
export interface Verdict {
  readonly ok: boolean;
  readonly body: Readonly<Record<string, unknown>>;
}

/**
 * The live loop beats every 250 ms; a heartbeat 40 beats late means its timer no longer runs or the event loop
 * was held that long, which no healthy pipeline does (a long GC or a full ring drain take milliseconds).
 */
export const HEARTBEAT_STALE_MS = 10_000;

export class HealthState {
  /** Undefined until the live loop first beats (start-up: loading BPF, generating BTF). */
  private _beatAt: number | undefined;
  private _shuttingDown = false;
  /** Undefined until the pipeline is built: the server listens first, so a taken port fails before files open. */
  private _facts: HealthFacts | undefined;

  constructor(private readonly _limits: HealthLimits) {}

  watch(facts: HealthFacts): void {
    this._facts = facts;
  }

  beat(now: number): void {
    this._beatAt = now;
  }

  /** A signal came, or the source ended: the flush runs, and nothing new will be read. */
  shutDown(): void {
    this._shuttingDown = true;
  }

  /**
   * Once shutting down the loop stops beating on purpose; the flush is bounded (the shutdown deadline, or no
   * progress for as long), so the process stays live until it exits by itself.
   */
  liveness(now: number): Verdict {
    if (this._shuttingDown) return { ok: true, body: { status: 'alive', loop: 'flushing before exit' } };
    if (this._beatAt === undefined) return { ok: true, body: { status: 'alive', loop: 'starting' } };
    const age = now - this._beatAt;
    if (age <= this._limits.staleAfterMs) return { ok: true, body: { status: 'alive', heartbeatAgeMs: age } };
    return {
      ok: false,
      body: { status: 'stalled', reasons: [`the pipeline's tick has not run for ${seconds(age)} s`] },
    };
  }

  readiness(now: number): Verdict {
    if (this._shuttingDown) return { ok: false, body: { status: 'shutting down' } };
    const facts = this._facts;
    if (facts === undefined) return { ok: false, body: { status: 'not ready', reasons: ['starting'] } };
    const source = facts.source();
    const since = facts.exportFailingSince();
    const failingMs = since === undefined ? 0 : Math.max(0, now - since);
    const exporter =
      since === undefined
        ? 'ok'
        : `failing for ${seconds(failingMs)} s: ${facts.lastExportError() ?? 'unknown error'}`;
    const exporterFailed =
      since !== undefined && this._limits.exportFailureMs > 0 && failingMs >= this._limits.exportFailureMs;
    if (source.ready && !exporterFailed)
      return { ok: true, body: { status: 'ready', source: source.detail, exporter } };
    const reasons: string[] = [];
    if (!source.ready) reasons.push(source.detail);
    if (exporterFailed) reasons.push(`exporter ${exporter}`);
    return { ok: false, body: { status: 'not ready', reasons } };
  }
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
