/**
 * `--pid` / `--binary`: which BPF program traces H2O (`--bpf`). The request probe (one trap per request) when the
 * binary's struct layouts can be had — with H2O's QUIC probes beside it when the binary has them and QUIC detail is
 * wanted (hybrid) — else H2O's USDT probes, saying why. The BPF modules (and koffi's native addon with them) are
 * loaded only here, only to trace a process.
 */
import { BpfError } from '../sources/bpf/errors.js';
import type { PollEnd } from '../sources/bpf/process-poller.js';
import type { Sessions } from '../sources/sink.js';
import type { RequestSource } from '../sources/request/request-source.js';
import type { DetachResult, UsdtSource, UsdtStats } from '../sources/usdt/usdt-source.js';
import type { Options } from './options.js';

export type BpfSource = UsdtSource | RequestSource | HybridSource;

export interface BpfSourceContext {
  readonly sessions: Sessions;
  /** The USDT points the output needs (--bpf usdt). */
  readonly points: readonly string[];
  /** The QUIC points beside the request probe; none: no QUIC detail wanted. */
  readonly quicPoints: readonly string[];
  /** Some response header is captured: only H2O's USDT probes carry them. */
  readonly responseHeaders: boolean;
  info(message: string): void;
  warn(message: string): void;
  /** Aborted by a signal while starting: stops the wait for a `--binary` that does not exist yet. */
  readonly signal?: AbortSignal;
}

/** How often a `--binary` that does not exist yet is looked for. */
const BINARY_WAIT_MS = 500;

/**
 * `--binary` may name a file that appears later: in a pod, the H2O container may copy its executable into the shared
 * volume after this sidecar started. Waits for it, said once; a signal ends the wait with a BpfError.
 */
async function binaryToExist(path: string, ctx: BpfSourceContext): Promise<void> {
  const { existsSync } = await import('node:fs');
  if (existsSync(path)) return;
  ctx.info(`h2o-otel: --binary ${path} does not exist yet: waiting for it`);
  while (!existsSync(path)) {
    if (ctx.signal?.aborted === true)
      throw new BpfError(`stopped while waiting for --binary ${path} to exist`);
    await new Promise((r) => setTimeout(r, BINARY_WAIT_MS));
  }
  ctx.info(`h2o-otel: --binary ${path} is there`);
}

/** The source `o` asks for; throws a BpfError that says what stops it. */
export async function openBpfSource(o: Options, ctx: BpfSourceContext): Promise<BpfSource> {
  if (o.source.kind !== 'usdt') throw new Error('openBpfSource: not a BPF source');
  const target = o.source.target;
  const { checkCapabilities, executableOfPid } = await import('../sources/bpf/procfs.js');
  checkCapabilities('attaching BPF probes');
  if (target.kind === 'binary') await binaryToExist(target.path, ctx);
  const usdt = await import('../sources/usdt/usdt-source.js');
  const usdtSource = (points: readonly string[]): UsdtSource =>
    new usdt.UsdtSource(
      {
        target,
        points,
        ringBytes: o.usdt.ringBytes,
        pollMs: o.usdt.pollMs,
        sampleRatio: o.socket.sampleRatio,
        maxValueBytes: o.headers.maxValueLength,
        objectPath: o.usdt.objectPath,
        countOnly: o.usdt.countOnly,
      },
      ctx,
    );
  if (o.bpf.probe === 'usdt') return usdtSource(ctx.points);
  // A recording is of events; the request probe sends finished requests, which have no event form.
  if (o.record !== undefined) {
    if (o.bpf.probe === 'request')
      throw new BpfError(
        '--record writes probe events, which --bpf request does not read: use --bpf usdt to record',
      );
    ctx.info("h2o-otel: --record: using H2O's USDT probes, whose events can be recorded");
    return usdtSource(ctx.points);
  }
  if (ctx.responseHeaders) {
    if (o.bpf.probe === 'auto') {
      ctx.info("h2o-otel: --capture-response-headers: using H2O's USDT probes, which carry response headers");
      return usdtSource(ctx.points);
    }
    ctx.warn('h2o-otel: --bpf request reads no response headers: --capture-response-headers captures none');
  }
  const request = await import('../sources/request/request-source.js');
  const binary = target.kind === 'pid' ? executableOfPid(target.pid) : target.path;
  let source: RequestSource;
  try {
    const { layout, describe } = await request.requestLayoutFor(binary, o.bpf);
    source = new request.RequestSource(
      {
        ...o.bpf,
        target,
        ringBytes: o.usdt.ringBytes,
        pollMs: o.usdt.pollMs,
        sampleRatio: o.socket.sampleRatio,
        idleMs: o.correlator.http2IdleMs,
        http1IdleMs: o.correlator.connectionIdleMs,
        maxConnections: o.correlator.maxConnections,
      },
      layout,
      ctx,
    );
    ctx.info(`h2o-otel: request probe: ${describe}`);
  } catch (err) {
    if (!(err instanceof BpfError) || o.bpf.probe === 'request') throw err;
    ctx.warn(`h2o-otel: the request probe cannot be used (${err.message}); using H2O's USDT probes instead`);
    return usdtSource(ctx.points);
  }
  try {
    return await withQuicProbes(o, ctx, binary, source, usdtSource);
  } catch (err) {
    source.close();
    throw err;
  }
}

/** The request probe alone, or with H2O's QUIC probes beside it when they can give the QUIC detail asked for. */
async function withQuicProbes(
  o: Options,
  ctx: BpfSourceContext,
  binary: string,
  source: RequestSource,
  usdtSource: (points: readonly string[]) => UsdtSource,
): Promise<BpfSource> {
  if (ctx.quicPoints.length === 0) return source;
  const { readUsdtNotes } = await import('../sources/usdt/elf-notes.js');
  if (!readUsdtNotes(binary).some((n) => n.provider === 'quicly')) return source;
  // The two programs would sample differently (by conn id, and by QUIC connection): requests without their
  // connection, connections without their requests.
  if (o.socket.sampleRatio !== undefined && o.socket.sampleRatio < 1) {
    ctx.info(
      'h2o-otel: --sample-ratio: no QUIC connection detail beside the request probe (the two would sample ' +
        'different connections); use --bpf usdt for sampled QUIC detail',
    );
    return source;
  }
  ctx.info(
    'h2o-otel: this H2O has QUIC probes: attaching them too, for QUIC connection detail (--quic-events)',
  );
  return new HybridSource(source, usdtSource(ctx.quicPoints), (m) => ctx.warn(m));
}

/** The request probe for requests, and H2O's QUIC probes for QUIC connections, on the same process(es). */
export class HybridSource {
  constructor(
    private readonly _request: RequestSource,
    private readonly _quic: UsdtSource,
    private readonly _warn: (message: string) => void,
  ) {}

  /**
   * Until stopped or the target exits; QUIC probes that cannot be attached leave the requests traced. An
   * unforeseen failure of either ends the run at once, with that error.
   */
  async run(): Promise<PollEnd> {
    const quic = this._quic.run().then(
      () => undefined,
      (err: unknown) => {
        if (!(err instanceof BpfError)) {
          this._request.stop();
          throw err;
        }
        this._warn(`h2o-otel: no QUIC detail: ${err.message}`);
      },
    );
    const [end] = await Promise.all([this._request.run().finally(() => this._quic.stop()), quic]);
    return end;
  }

  stop(): void {
    this._request.stop();
    this._quic.stop();
  }

  /** The requests are traced; QUIC detail is extra. */
  get attached(): boolean {
    return this._request.attached;
  }

  /** Both programs' counts together (each is a probe of its own). */
  stats(): UsdtStats {
    const r = this._request.stats();
    const q = this._quic.stats();
    return {
      hits: r.hits + q.hits,
      emitted: r.emitted + q.emitted,
      lost: r.lost + q.lost,
      readFailures: r.readFailures + q.readFailures,
      truncated: r.truncated + q.truncated,
      sampledOut: r.sampledOut + q.sampledOut,
      skippedHeaders: r.skippedHeaders + q.skippedHeaders,
      probesAttached: r.probesAttached + q.probesAttached,
      probesSkipped: r.probesSkipped + q.probesSkipped,
      processes: Math.max(r.processes, q.processes),
      decode: {
        records: r.decode.records + q.decode.records,
        badRecords: r.decode.badRecords + q.decode.badRecords,
        unmappedQuicEvents: q.decode.unmappedQuicEvents,
      },
    };
  }

  async closeWithin(budgetMs: number): Promise<DetachResult> {
    const [r, q] = await Promise.all([this._request.closeWithin(), this._quic.closeWithin(budgetMs)]);
    return { detached: r.detached + q.detached, remaining: q.remaining, ms: Math.max(r.ms, q.ms) };
  }
}
