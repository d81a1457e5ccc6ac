/**
 * `--pid` / `--binary`: which BPF program traces H2O (`--bpf`). The request probe (one trap per request) when the
 * binary's struct layouts can be had; else H2O's USDT probes, saying why. The BPF modules (and koffi's native addon
 * with them) are loaded only here, only to trace a process.
 */
import type { Sessions } from '../sources/sink.js';
import type { RequestSource } from '../sources/request/request-source.js';
import type { UsdtSource } from '../sources/usdt/usdt-source.js';
import type { Options } from './options.js';

export type BpfSource = UsdtSource | RequestSource;

export interface BpfSourceContext {
  readonly sessions: Sessions;
  /** The USDT points the output needs (for --bpf usdt). */
  readonly points: readonly string[];
  info(message: string): void;
  warn(message: string): void;
}

/** The source `o` asks for; throws a BpfError that says what stops it. */
export async function openBpfSource(o: Options, ctx: BpfSourceContext): Promise<BpfSource> {
  if (o.source.kind !== 'usdt') throw new Error('openBpfSource: not a BPF source');
  const target = o.source.target;
  const { BpfError } = await import('../sources/bpf/errors.js');
  const { checkCapabilities, executableOfPid } = await import('../sources/bpf/procfs.js');
  checkCapabilities('attaching BPF probes');
  if (o.bpf.probe !== 'usdt') {
    const request = await import('../sources/request/request-source.js');
    const binary = target.kind === 'pid' ? executableOfPid(target.pid) : target.path;
    try {
      const { layout, describe } = await request.requestLayoutFor(binary, o.bpf);
      const source = new request.RequestSource(
        {
          ...o.bpf,
          target,
          ringBytes: o.usdt.ringBytes,
          pollMs: o.usdt.pollMs,
          sampleRatio: o.socket.sampleRatio,
          idleMs: o.correlator.http2IdleMs,
          maxConnections: o.correlator.maxConnections,
        },
        layout,
        ctx,
      );
      ctx.info(`h2o-otel: request probe: ${describe}`);
      return source;
    } catch (err) {
      if (!(err instanceof BpfError) || o.bpf.probe === 'request') throw err;
      ctx.warn(
        `h2o-otel: the request probe cannot be used (${err.message}); using H2O's USDT probes instead`,
      );
    }
  }
  const usdt = await import('../sources/usdt/usdt-source.js');
  return new usdt.UsdtSource(
    {
      target,
      points: ctx.points,
      ringBytes: o.usdt.ringBytes,
      pollMs: o.usdt.pollMs,
      sampleRatio: o.socket.sampleRatio,
      maxValueBytes: o.headers.maxValueLength,
      objectPath: o.usdt.objectPath,
      countOnly: o.usdt.countOnly,
    },
    ctx,
  );
}
