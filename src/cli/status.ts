/** The periodic one-line status on stderr, the notices said once, and the summary at exit. */
import type { CorrelatorStats } from '../correlate/correlator.js';
import type { ExportStats, OutageRecord } from '../export/batch-processor.js';
import { rejectedLines } from '../events/types.js';
import type { DecodeStats } from '../events/types.js';
import type { SpanMapperStats } from '../otel/span-mapper.js';
import type { TracerRequestStats } from '../correlate/tracer-requests.js';
import type { H2oStatusStats } from '../sources/h2o-status.js';
import type { SocketStats } from '../sources/socket.js';
import type { UsdtStats } from '../sources/usdt/usdt-source.js';

export interface StatusSources {
  readonly decode: DecodeStats;
  readonly correlate: CorrelatorStats;
  readonly spans: SpanMapperStats;
  readonly tracers: TracerRequestStats;
  readonly export: ExportStats;
  /** The USDT source's counters, when that is the source. */
  usdt(): UsdtStats | undefined;
  /** What H2O's status handler said of the events it dropped (`--h2o-status`). */
  h2oStatus(): H2oStatusStats | undefined;
  /** The h2olog socket's reconnects after H2O restarts, when that is the source. */
  socket(): SocketStats | undefined;
  openConnections(): number;
  openRequests(): number;
  queueLength(): number;
}

export class StatusReporter {
  private _lastEvents = 0;
  private _lastSpans = 0;
  private _lastAt = Date.now();
  private _warnedHidden = false;
  private _announcedOutage = 0;
  private _reportedOutage: OutageRecord | undefined;
  private _warnedRejection: string | undefined;
  private _warnedLost = 0;
  private _warnedReads = 0;
  private _warnedH2oLost = 0;
  private _warnedStatusFailure = false;

  constructor(
    private readonly _s: StatusSources,
    private readonly _write: (line: string) => void,
  ) {}

  /** One line of rates and counters since the last call. */
  line(): string {
    const s = this._s;
    const now = Date.now();
    const secs = Math.max((now - this._lastAt) / 1000, 0.001);
    const spans = s.spans.requestSpans + s.spans.connectionSpans;
    const evRate = (s.decode.events - this._lastEvents) / secs;
    const spanRate = (spans - this._lastSpans) / secs;
    this._lastEvents = s.decode.events;
    this._lastSpans = spans;
    this._lastAt = now;
    const bad = s.decode.malformed + s.decode.tooLong + s.decode.notEvents + rejectedLines(s.decode);
    const u = s.usdt();
    const h = s.h2oStatus();
    const lost =
      u === undefined
        ? `lost ${s.decode.reportedLost}${h === undefined ? '' : `, H2O dropped ${h.lost}`}`
        : `ring lost ${u.lost}, read failures ${u.readFailures}, truncated ${u.truncated}`;
    return (
      `h2o-otel: ${Math.round(evRate)} events/s, ${Math.round(spanRate)} spans/s | ` +
      `events ${s.decode.events}, requests ${s.spans.requestSpans}, connections ${s.spans.connectionSpans} | ` +
      `exported ${s.export.exported}, queued ${s.queueLength()}, dropped ${s.export.dropped}, failed ${s.export.failed}` +
      `${exportPaused(s.export)} | ` +
      `bad lines ${bad}, ${lost} | open conns ${s.openConnections()}, reqs ${s.openRequests()}` +
      reconnectStatus(s.socket())
    );
  }

  /** Print the status line and any new notice. */
  report(withLine: boolean): void {
    this.notices();
    if (withLine) this._write(this.line());
  }

  /** Problems worth one clear sentence each, said when first seen. */
  notices(): void {
    const s = this._s;
    if (!this._warnedHidden && s.correlate.hiddenHeaderEvents > 0) {
      this._warnedHidden = true;
      this._write(
        'h2o-otel: H2O sends header events without names and values, so spans lack method, path and headers. ' +
          'Set `h2olog: appdata` (not `ON`) on the h2olog host in h2o.conf and restart H2O.',
      );
    }
    const u = s.usdt();
    if (u !== undefined && u.lost > this._warnedLost) {
      this._warnedLost = u.lost;
      this._write(
        `h2o-otel: the BPF ring buffer was full: ${u.lost} events lost so far, so some spans are missing or ` +
          'incomplete. Raise --ring-size, lower --poll-ms, or trace fewer connections with --sample-ratio.',
      );
    }
    if (u !== undefined && u.readFailures > this._warnedReads) {
      this._warnedReads = u.readFailures;
      this._write(
        `h2o-otel: ${u.readFailures} strings could not be read from H2O's memory (page not resident); ` +
          'those header names or values are missing from their spans.',
      );
    }
    const h = s.h2oStatus();
    if (h !== undefined && h.lost > this._warnedH2oLost) {
      this._warnedH2oLost = h.lost;
      this._write(
        `h2o-otel: H2O dropped ${h.lost} trace events so far that it could not write to h2olog clients (its ` +
          '`h2olog.lost`, all clients together): the socket buffer ran full, so spans are missing. Set ' +
          '`sndbuf: 4194304` (or more) on the h2olog listener in h2o.conf, or trace fewer connections with --sample-ratio.',
      );
    }
    if (h !== undefined && h.failures > 0 && !this._warnedStatusFailure) {
      this._warnedStatusFailure = true;
      this._write(
        `h2o-otel: --h2o-status could not be read (${h.lastError ?? 'unknown error'}), so events H2O drops are not ` +
          'counted. Point it at the URL of a `status: ON` path in h2o.conf.',
      );
    }
    this._exportNotices(s.export);
  }

  /** Once per outage, its start and its end; a refusal for good once per distinct error. */
  private _exportNotices(e: ExportStats): void {
    // An outage is said once it is still on at a check, so a flapping backend (one refusal among successes)
    // does not fill stderr; short ones are counted in the status line and the summary.
    if (e.outageSince !== undefined && e.outages > this._announcedOutage) {
      this._announcedOutage = e.outages;
      this._write(
        `h2o-otel: export failed: ${e.lastError ?? 'unknown error'}. Is the collector running and reachable at the ` +
          'configured endpoint? Spans wait in the queue until it is (--max-queue-size; beyond it they are dropped ' +
          'and counted), and it is tried again every few seconds.',
      );
    }
    const ended = e.outageSince === undefined ? e.outages : e.outages - 1;
    if (e.lastOutage !== undefined && e.lastOutage !== this._reportedOutage) {
      this._reportedOutage = e.lastOutage;
      const o = e.lastOutage;
      if (ended === this._announcedOutage)
        this._write(
          `h2o-otel: export recovered after ${(o.durationMs / 1000).toFixed(1)} s: ${o.delayed} spans delayed, ` +
            `${o.dropped} dropped`,
        );
    }
    if (e.lastRejection !== undefined && e.lastRejection !== this._warnedRejection) {
      this._warnedRejection = e.lastRejection;
      this._write(
        `h2o-otel: the collector refused spans (${e.failed} so far; not retried): ${e.lastRejection}. Check the ` +
          'endpoint path, the --otlp-header credentials and the collector log.',
      );
    }
  }

  summary(): string {
    const s = this._s;
    const d = s.decode;
    const parts = [
      `lines ${d.lines}`,
      `events ${d.events}`,
      `unused headers ${d.unusedHeaders}`,
      `other unused events ${d.unusedEvents}`,
      `malformed ${d.malformed}`,
      `too long ${d.tooLong}`,
      `not events ${d.notEvents}`,
      `non-UTF-8 ${d.nonUtf8Lines}`,
      `reported lost ${d.reportedLost}`,
      `untimed ${d.untimed}`,
      `bad times ${d.badTimes}`,
      `far times ${d.farTimes}`,
      `bad ids ${d.badIds}`,
      `bad statuses ${d.badStatuses}`,
      `bad versions ${d.badVersions}`,
      `bad fields ${d.badFields}`,
      `too deep ${d.tooDeep}`,
      ...usdtSummary(s.usdt()),
      ...h2oStatusSummary(s.h2oStatus()),
      ...socketSummary(s.socket()),
      `request spans ${s.spans.requestSpans}`,
      `connection spans ${s.spans.connectionSpans}`,
      `continued traces ${s.spans.continuedTraces}`,
      `tracer requests ${s.tracers.tracerRequests}`,
      `mid-flight ${s.correlate.midFlightRequests}`,
      `orphan events ${s.correlate.orphanEvents}`,
      `evicted conns ${s.correlate.evictedConnections}`,
      `evicted requests ${s.correlate.evictedRequests}`,
      `exported ${s.export.exported}`,
      `dropped ${s.export.dropped} (at exit ${s.export.droppedAtExit})`,
      `failed ${s.export.failed}`,
      `export outages ${s.export.outages}${exportPaused(s.export)}`,
    ];
    return `h2o-otel: done: ${parts.join(', ')}`;
  }
}

/** While the collector cannot be reached: for how long. */
function exportPaused(e: ExportStats): string {
  if (e.outageSince === undefined) return '';
  return ` (export paused ${Math.round((Date.now() - e.outageSince) / 1000)} s: collector unreachable)`;
}

function h2oStatusSummary(h: H2oStatusStats | undefined): string[] {
  if (h === undefined) return [];
  return [`H2O dropped ${h.lost}`, `H2O status reads failed ${h.failures}`];
}

/** Events H2O sent while h2o-otel had no subscription are lost: how long that was. */
function reconnectStatus(r: SocketStats | undefined): string {
  if (r === undefined || r.reconnects === 0) return '';
  return ` | reconnects ${r.reconnects}, last gap ${r.lastGapMs} ms`;
}

function socketSummary(r: SocketStats | undefined): string[] {
  if (r === undefined) return [];
  return [`reconnects ${r.reconnects}`, `time without a subscription ${r.totalGapMs} ms`];
}

function usdtSummary(u: UsdtStats | undefined): string[] {
  if (u === undefined) return [];
  return [
    `probes attached ${u.probesAttached}`,
    `skipped ${u.probesSkipped}`,
    `probe hits ${u.hits}`,
    `sampled out ${u.sampledOut}`,
    `headers skipped in BPF ${u.skippedHeaders}`,
    `ring records ${u.emitted}`,
    `ring lost ${u.lost}`,
    `read failures ${u.readFailures}`,
    `truncated strings ${u.truncated}`,
    `bad records ${u.decode.badRecords}`,
  ];
}
