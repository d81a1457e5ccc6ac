/**
 * Command line and environment → one typed Options object. The only place that reads argv and env; every
 * option is documented once here, with its default and its variable.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_CORRELATOR_OPTIONS } from '../correlate/correlator.js';
import type { QuicEventLevel } from '../events/catalogue.js';
import type { CorrelatorOptions } from '../correlate/correlator.js';
import { DEFAULT_BATCH_OPTIONS } from '../export/batch-processor.js';
import type { BatchOptions } from '../export/batch-processor.js';
import { parseHeaderList, signalUrl } from '../export/otlp.js';
import type { OtlpProtocol } from '../export/otlp.js';
import { parseNameList } from '../otel/header-policy.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../otel/url.js';
import { DEFAULT_BPF_OBJECT } from '../sources/usdt/defaults.js';
import type { UsdtTarget } from '../sources/usdt/defaults.js';

export type Env = Readonly<Record<string, string | undefined>>;

export type Source =
  { kind: 'socket'; path: string } | { kind: 'replay'; path: string } | { kind: 'usdt'; target: UsdtTarget };

export interface Options {
  readonly source: Source;
  readonly record: string | undefined;
  readonly socket: {
    readonly sampleRatio: number | undefined;
    readonly sni: string[];
    readonly addresses: string[];
    readonly applicationData: boolean;
    readonly reconnect: boolean;
    /** H2O's status handler, read for the events H2O drops when this reader falls behind. */
    readonly h2oStatus: string | undefined;
  };
  readonly usdt: {
    readonly countOnly: boolean;
    readonly ringBytes: number;
    readonly pollMs: number;
    readonly objectPath: string;
  };
  readonly exporter:
    | { kind: 'console' }
    | { kind: 'none' }
    | { kind: 'otlp'; protocol: OtlpProtocol; url: string; headers: Record<string, string> };
  /** h2o-otel's own counters over OTLP (only with the OTLP exporter). */
  readonly metrics:
    { protocol: OtlpProtocol; url: string; headers: Record<string, string>; intervalMs: number } | undefined;
  readonly serviceName: string | undefined;
  readonly sampler: { name: string | undefined; arg: string | undefined };
  readonly headers: { request: string[]; response: string[]; sanitize: string[]; maxValueLength: number };
  readonly sensitiveQueryParams: string[];
  readonly batch: BatchOptions;
  readonly correlator: CorrelatorOptions;
  readonly maxLineBytes: number;
  readonly quicEvents: QuicEventLevel;
  readonly qlog: { readonly dir: string; readonly maxBytes: number } | undefined;
  readonly statusIntervalSec: number;
  readonly quiet: boolean;
}

function intArg(name: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function ringSizeArg(v: string): number {
  const mib = Number(v);
  if (!Number.isInteger(mib) || mib < 1 || mib > 1024 || (mib & (mib - 1)) !== 0)
    throw new InvalidArgumentError('must be a power of two between 1 and 1024 (MiB)');
  return mib;
}

function positiveNumberArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('must be a positive number');
  return n;
}

function ratioArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new InvalidArgumentError('must be a number between 0 and 1');
  }
  return n;
}

function collect(v: string, previous: string[]): string[] {
  return [...previous, v];
}

function envInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

const ENV_HELP = `
Environment (flags win over variables):
  OTEL_EXPORTER_OTLP_ENDPOINT            base OTLP endpoint (same as --endpoint); setting it selects OTLP export
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT     full traces URL, used as is
  OTEL_EXPORTER_OTLP_PROTOCOL            grpc | http/protobuf (also ..._TRACES_PROTOCOL); default http/protobuf
  OTEL_EXPORTER_OTLP_HEADERS             k=v,k2=v2 sent with every export (also ..._TRACES_HEADERS)
  OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_COMPRESSION   read by the OTLP exporter
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT    full metrics URL for h2o-otel's own counters (default: next to the traces)
  OTEL_METRIC_EXPORT_INTERVAL            ms between metric exports (default 60000); OTEL_METRICS_EXPORTER=none: off
  OTEL_SERVICE_NAME                      service.name of the spans (default "h2o")
  OTEL_RESOURCE_ATTRIBUTES               extra resource attributes, k=v,k2=v2
  OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG   always_on | always_off | traceidratio | parentbased_* (default
                                         parentbased_always_on), decided per request
  OTEL_BSP_MAX_QUEUE_SIZE                spans queued before new ones are dropped and counted (default ${DEFAULT_BATCH_OPTIONS.maxQueueSize})
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE         most spans per export, as --batch-size (default ${DEFAULT_BATCH_OPTIONS.maxExportBatchSize})
  OTEL_BSP_SCHEDULE_DELAY                ms before a partial batch is sent (default ${DEFAULT_BATCH_OPTIONS.scheduledDelayMillis})
  OTEL_BSP_EXPORT_TIMEOUT                ms one export attempt may take (default ${DEFAULT_BATCH_OPTIONS.exportTimeoutMillis})
  OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS    header names to export, comma-separated
  OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS   (same for responses)

Secrets: authorization, proxy-authorization, cookie, set-cookie and common API-key headers are always exported as
"REDACTED", even when captured; sensitive query parameters (token, password, sig, ...) likewise.

Examples:
  h2o-otel --replay capture.jsonl                      print the traces of a capture on stdout
  h2o-otel --socket /run/h2o/h2olog.sock               live, printing traces (no collector needed)
  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 h2o-otel --socket /run/h2o/h2olog.sock
  h2o-otel --socket /run/h2o/h2olog.sock --endpoint http://localhost:4317 --protocol grpc \\
      --capture-request-headers user-agent,x-request-id --sample-ratio 0.1
  h2o-otel --socket /run/h2o/h2olog.sock --exporter none --record trace.jsonl
  sudo h2o-otel --pid "$(pgrep -o h2o)"               USDT: attach BPF to a running H2O built with DTrace
  sudo h2o-otel --binary /usr/local/bin/h2o --sample-ratio 0.1   every H2O process of that file, restarts too

USDT needs root, or CAP_BPF + CAP_PERFMON (+ CAP_SYS_PTRACE for another container's process), libbpf.so.1
(apt-get install libbpf1) and an H2O built with -DWITH_DTRACE=ON.
`;

export function buildCommand(): Command {
  return new Command('h2o-otel')
    .description(
      'Turn H2O trace events (the h2olog socket, USDT probes, or a recorded capture) into OpenTelemetry spans:\n' +
        'one SERVER span per HTTP/1, HTTP/2 and HTTP/3 request, linked to a span per connection, exported over OTLP.',
    )
    .addOption(
      new Option('--socket <path>', "H2O's h2olog unix socket (a host with `h2olog: appdata`)").conflicts(
        'replay',
      ),
    )
    .addOption(
      new Option(
        '--replay <file>',
        'read h2olog JSON lines from a file, or - for stdin; exit when done',
      ).conflicts(['pid', 'binary']),
    )
    .addOption(
      new Option('--pid <pid>', "USDT: attach BPF to this H2O process's probes; exit when it exits")
        .argParser(intArg('--pid', 1))
        .conflicts(['socket', 'binary']),
    )
    .addOption(
      new Option(
        '--binary <path>',
        'USDT: attach to every process of this h2o executable, including ones started later',
      ).conflicts('socket'),
    )
    .option('--record <file>', 'also write every decoded event as h2olog JSON lines (replayable)')
    .option(
      '--sample-ratio <ratio>',
      'trace this fraction of connections, decided once per connection (0..1); in H2O (socket) or in BPF (USDT)',
      ratioArg,
    )
    .option('--sni <name>', 'socket: only connections with this TLS SNI (repeatable)', collect, [])
    .option('--address <ip>', 'socket: only connections from this client IP (repeatable)', collect, [])
    .option('--no-application-data', 'socket: do not ask H2O for header names and values')
    .option('--no-reconnect', 'socket: exit when the stream ends or cannot be opened, instead of retrying')
    .option(
      '--h2o-status <url>',
      "socket: H2O's status handler (e.g. http://127.0.0.1:8080/server-status), read every 5 s for the events " +
        'H2O dropped because this reader fell behind (h2olog.lost)',
    )
    .addOption(
      new Option(
        '--quic-events <level>',
        'QUIC and TLS detail on HTTP/3 spans: none, basic (handshake, losses, PTOs, congestion, close, streams), ' +
          'or detailed (also every packet)',
      )
        .choices(['none', 'basic', 'detailed'])
        .default('basic'),
    )
    .option('--qlog-dir <dir>', 'also write each QUIC connection as a qlog file (.sqlog) in this directory')
    .option(
      '--qlog-max-mb <n>',
      'keep the qlog directory under this size (MiB, fractions allowed); the oldest files are deleted first',
      positiveNumberArg,
      256,
    )
    .option(
      '--max-span-events <n>',
      'QUIC/TLS events kept per span; more are counted as dropped (totals stay exact)',
      intArg('--max-span-events', 1),
      DEFAULT_CORRELATOR_OPTIONS.maxSpanEvents,
    )
    .option('--ring-size <MiB>', 'USDT: BPF ring buffer size, a power of two', ringSizeArg, 16)
    .option(
      '--usdt-count-only',
      'USDT: only count probe hits in BPF (what attaching costs H2O, for benchmarks); no spans',
    )
    .option('--poll-ms <ms>', 'USDT: how often the ring buffer is drained', intArg('--poll-ms', 1), 10)
    .addOption(
      new Option('--bpf-object <path>', 'USDT: the compiled BPF program to load').default(
        DEFAULT_BPF_OBJECT,
        "h2o-otel's native/h2o_usdt.bpf.o",
      ),
    )
    .addOption(
      new Option(
        '--exporter <kind>',
        'where spans go (default: otlp when an endpoint is set, else console)',
      ).choices(['console', 'otlp', 'none']),
    )
    .option(
      '--endpoint <url>',
      'OTLP endpoint, e.g. http://localhost:4318 (HTTP) or http://localhost:4317 (gRPC)',
    )
    .addOption(new Option('--protocol <protocol>', 'OTLP protocol').choices(['grpc', 'http/protobuf']))
    .option('--otlp-header <key=value>', 'header sent with every export (repeatable)', collect, [])
    .option('--service-name <name>', 'service.name of the spans (default "h2o")')
    .option(
      '--no-metrics',
      "with OTLP export: do not export h2o-otel's own counters (events, drops, lost records)",
    )
    .option(
      '--capture-request-headers <names>',
      'request headers to export as attributes, comma-separated, or *',
    )
    .option(
      '--capture-response-headers <names>',
      'response headers to export as attributes, comma-separated, or *',
    )
    .option('--sanitize-headers <names>', 'more header names whose values are always REDACTED')
    .option('--redact-query-params <names>', 'more query parameters whose values are REDACTED')
    .option(
      '--max-header-length <n>',
      'longer header values are cut and flagged (USDT copies at most 4096 bytes)',
      intArg('--max-header-length', 1),
      4096,
    )
    .option(
      '--max-queue-size <n>',
      'spans queued before new ones are dropped (and counted)',
      intArg('--max-queue-size', 1),
    )
    .option(
      '--batch-size <n>',
      `most spans per export (default ${DEFAULT_BATCH_OPTIONS.maxExportBatchSize}); while no export is in flight, ` +
        `one starts as soon as ${DEFAULT_BATCH_OPTIONS.minExportBatchSize} spans wait`,
      intArg('--batch-size', 1),
    )
    .option('--concurrent-exports <n>', 'exports in flight at once', intArg('--concurrent-exports', 1), 4)
    .option(
      '--http1-quiet-ms <ms>',
      'an HTTP/1 request ends this long after its last write',
      intArg('--http1-quiet-ms', 0),
    )
    .option(
      '--http2-idle-ms <ms>',
      'an HTTP/2 connection ends after this long without events',
      intArg('--http2-idle-ms', 0),
    )
    .option(
      '--max-connections <n>',
      'open connections tracked at most (oldest evicted, counted)',
      intArg('--max-connections', 1),
    )
    .option(
      '--max-line-bytes <n>',
      'longer input lines are dropped and counted',
      intArg('--max-line-bytes', 1024),
      16 << 20,
    )
    .option(
      '--status-interval <seconds>',
      'status line on stderr every N seconds, 0 for none',
      intArg('--status-interval', 0),
      10,
    )
    .option('-q, --quiet', 'no status lines or notices on stderr (errors still print)')
    .addHelpText('after', ENV_HELP)
    .showHelpAfterError('(run h2o-otel --help for usage)');
}

interface Flags {
  socket?: string;
  replay?: string;
  record?: string;
  sampleRatio?: number;
  sni: string[];
  address: string[];
  applicationData: boolean;
  reconnect: boolean;
  h2oStatus?: string;
  pid?: number;
  binary?: string;
  ringSize: number;
  usdtCountOnly?: boolean;
  quicEvents: QuicEventLevel;
  maxSpanEvents: number;
  qlogDir?: string;
  qlogMaxMb: number;
  pollMs: number;
  bpfObject: string;
  metrics: boolean;
  exporter?: 'console' | 'otlp' | 'none';
  endpoint?: string;
  protocol?: OtlpProtocol;
  otlpHeader: string[];
  serviceName?: string;
  captureRequestHeaders?: string;
  captureResponseHeaders?: string;
  sanitizeHeaders?: string;
  redactQueryParams?: string;
  maxHeaderLength: number;
  maxQueueSize?: number;
  batchSize?: number;
  concurrentExports: number;
  http1QuietMs?: number;
  http2IdleMs?: number;
  maxConnections?: number;
  maxLineBytes: number;
  statusInterval: number;
  quiet?: boolean;
}

function protocolFrom(value: string | undefined, variable: string): OtlpProtocol | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (v === 'grpc' || v === 'http/protobuf') return v;
  throw new InvalidArgumentError(`${variable}="${value}" is not supported; use grpc or http/protobuf`);
}

function validUrl(url: string, what: string): string {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new InvalidArgumentError(`${what} must be an http:// or https:// URL, got "${url}"`);
  }
  return url;
}

/** Parse argv (node, script, ...args) with `env`; throws InvalidArgumentError with a message for the user. */
export function resolveOptions(command: Command, argv: readonly string[], env: Env): Options {
  command.parse([...argv]);
  const f = command.opts<Flags>();
  let source: Source;
  if (f.socket !== undefined) source = { kind: 'socket', path: f.socket };
  else if (f.replay !== undefined) source = { kind: 'replay', path: f.replay };
  else if (f.pid !== undefined) source = { kind: 'usdt', target: { kind: 'pid', pid: f.pid } };
  else if (f.binary !== undefined) source = { kind: 'usdt', target: { kind: 'binary', path: f.binary } };
  else
    throw new InvalidArgumentError(
      'say where events come from: --socket PATH (the h2olog socket), --pid PID or --binary PATH (USDT), or --replay FILE',
    );

  if (f.h2oStatus !== undefined && source.kind !== 'socket')
    throw new InvalidArgumentError(
      '--h2o-status counts the events H2O drops on the h2olog socket: use it with --socket (USDT counts its own losses)',
    );

  const protocol =
    f.protocol ??
    protocolFrom(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ??
    protocolFrom(env.OTEL_EXPORTER_OTLP_PROTOCOL, 'OTEL_EXPORTER_OTLP_PROTOCOL') ??
    'http/protobuf';
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined;
  const baseEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || undefined;
  let url: string | undefined;
  if (f.endpoint !== undefined) url = signalUrl(validUrl(f.endpoint, '--endpoint'), protocol);
  else if (tracesEndpoint !== undefined) url = validUrl(tracesEndpoint, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  else if (baseEndpoint !== undefined)
    url = signalUrl(validUrl(baseEndpoint, 'OTEL_EXPORTER_OTLP_ENDPOINT'), protocol);
  const kind = f.exporter ?? (url !== undefined ? 'otlp' : 'console');
  const headers: Record<string, string> = {};
  for (const h of f.otlpHeader) {
    const parsed = parseHeaderList(h);
    if (Object.keys(parsed).length === 0)
      throw new InvalidArgumentError(`--otlp-header "${h}" must look like key=value`);
    Object.assign(headers, parsed);
  }
  const metricsEndpoint = env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?.trim() || undefined;
  const base = f.endpoint ?? baseEndpoint;
  let metricsUrl: string;
  if (metricsEndpoint !== undefined)
    metricsUrl = validUrl(metricsEndpoint, 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT');
  else if (base !== undefined) metricsUrl = signalUrl(base, protocol, 'metrics');
  else if (url !== undefined)
    metricsUrl = protocol === 'grpc' ? url : url.replace(/\/v1\/traces\/?$/, '/v1/metrics');
  else metricsUrl = protocol === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318/v1/metrics';
  const metricsOff = f.metrics === false || env.OTEL_METRICS_EXPORTER?.trim() === 'none';
  const metrics: Options['metrics'] =
    kind === 'otlp' && !metricsOff
      ? {
          protocol,
          url: metricsUrl,
          headers,
          intervalMs: envInt(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000),
        }
      : undefined;
  const exporter: Options['exporter'] =
    kind === 'otlp'
      ? {
          kind,
          protocol,
          url: url ?? (protocol === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318/v1/traces'),
          headers,
        }
      : { kind };

  return {
    source,
    record: f.record,
    socket: {
      sampleRatio: f.sampleRatio,
      sni: f.sni,
      addresses: f.address,
      applicationData: f.applicationData,
      reconnect: f.reconnect,
      h2oStatus: f.h2oStatus === undefined ? undefined : validUrl(f.h2oStatus, '--h2o-status'),
    },
    usdt: {
      countOnly: f.usdtCountOnly === true,
      ringBytes: f.ringSize * 1024 * 1024,
      pollMs: f.pollMs,
      objectPath: f.bpfObject,
    },
    exporter,
    metrics,
    serviceName: f.serviceName,
    sampler: { name: env.OTEL_TRACES_SAMPLER, arg: env.OTEL_TRACES_SAMPLER_ARG },
    headers: {
      request: parseNameList(
        f.captureRequestHeaders ?? env.OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS,
      ),
      response: parseNameList(
        f.captureResponseHeaders ?? env.OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS,
      ),
      sanitize: parseNameList(f.sanitizeHeaders),
      maxValueLength: f.maxHeaderLength,
    },
    sensitiveQueryParams: [...DEFAULT_SENSITIVE_QUERY_PARAMS, ...parseNameList(f.redactQueryParams)].map(
      (p) => p.toLowerCase(),
    ),
    batch: {
      ...DEFAULT_BATCH_OPTIONS,
      maxQueueSize:
        f.maxQueueSize ?? envInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_BATCH_OPTIONS.maxQueueSize),
      maxExportBatchSize:
        f.batchSize ??
        envInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', DEFAULT_BATCH_OPTIONS.maxExportBatchSize),
      scheduledDelayMillis: envInt(
        env,
        'OTEL_BSP_SCHEDULE_DELAY',
        DEFAULT_BATCH_OPTIONS.scheduledDelayMillis,
      ),
      exportTimeoutMillis: envInt(env, 'OTEL_BSP_EXPORT_TIMEOUT', DEFAULT_BATCH_OPTIONS.exportTimeoutMillis),
      maxConcurrentExports: f.concurrentExports,
    },
    correlator: {
      ...DEFAULT_CORRELATOR_OPTIONS,
      http1QuietMs: f.http1QuietMs ?? DEFAULT_CORRELATOR_OPTIONS.http1QuietMs,
      http2IdleMs: f.http2IdleMs ?? DEFAULT_CORRELATOR_OPTIONS.http2IdleMs,
      maxConnections: f.maxConnections ?? DEFAULT_CORRELATOR_OPTIONS.maxConnections,
      maxSpanEvents: f.maxSpanEvents,
    },
    maxLineBytes: f.maxLineBytes,
    // qlog is for packet-level tools (qvis): unless a level was chosen, subscribe to every packet.
    quicEvents:
      f.qlogDir !== undefined && command.getOptionValueSource('quicEvents') === 'default'
        ? 'detailed'
        : f.quicEvents,
    qlog:
      f.qlogDir === undefined
        ? undefined
        : { dir: f.qlogDir, maxBytes: Math.round(f.qlogMaxMb * 1024 * 1024) },
    statusIntervalSec: f.statusInterval,
    quiet: f.quiet === true,
  };
}
