/**
 * Command line and environment → one typed Options object. With the option table, the only place that reads
 * argv and env: what the rest of h2o-otel needs (exporter settings, resource, sampler) is passed down as values.
 */
import { homedir } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_CORRELATOR_OPTIONS } from '../correlate/correlator.js';
import type { CorrelatorOptions } from '../correlate/correlator.js';
import type { QuicEventLevel } from '../events/catalogue.js';
import { DEFAULT_BATCH_OPTIONS } from '../export/batch-processor.js';
import type { BatchOptions } from '../export/batch-processor.js';
import type { OtlpOptions } from '../export/otlp.js';
import { samplerFrom } from '../otel/sampler.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../otel/url.js';
import { defaultBtfCacheDir } from '../sources/request/btf-cache.js';
import type { UsdtTarget } from '../sources/usdt/defaults.js';
import { readConfigFile } from './config-file.js';
import type { HealthOptions } from './health-state.js';
import { addOptions, envHelp, readValue, readValues } from './option-spec.js';
import type { Env, OptionValues } from './option-spec.js';
import { OPTION_TABLE } from './option-table.js';
import { VERSION } from '../version.js';
import { resolveEndpoints } from './otlp-endpoint.js';
import { resourceAttributes } from './resource.js';

export type { Env } from './option-spec.js';

export type Source =
  { kind: 'socket'; path: string } | { kind: 'replay'; path: string } | { kind: 'usdt'; target: UsdtTarget };

export interface Options {
  readonly source: Source;
  readonly record: string | undefined;
  /** `--force`: `--record` may replace an existing file. */
  readonly force: boolean;
  readonly socket: {
    readonly sampleRatio: number | undefined;
    readonly sni: string[];
    readonly addresses: string[];
    readonly applicationData: boolean;
    readonly reconnect: boolean;
    /** H2O's status handler, read for the events H2O drops when this reader falls behind. */
    readonly h2oStatus: string | undefined;
  };
  /** Which BPF program traces a process (`--bpf`), and where the request probe finds struct layouts. */
  readonly bpf: {
    readonly probe: 'auto' | 'request' | 'usdt';
    readonly debugFile: string | undefined;
    readonly btfCacheDir: string;
  };
  readonly usdt: {
    readonly countOnly: boolean;
    readonly ringBytes: number;
    readonly pollMs: number;
    readonly objectPath: string;
  };
  readonly exporter: { kind: 'console' } | { kind: 'none' } | ({ kind: 'otlp' } & Required<OtlpOptions>);
  /**
   * The RED metrics and h2o-otel's own counters: over OTLP with the OTLP exporter, and/or served to Prometheus;
   * undefined when neither (or `--no-metrics`).
   */
  readonly metrics:
    | {
        readonly otlp: (Required<OtlpOptions> & { intervalMs: number }) | undefined;
        readonly prometheus: { readonly host: string; readonly port: number } | undefined;
      }
    | undefined;
  /** --service-name or OTEL_SERVICE_NAME; `resourceAttributes` holds the service.name in effect. */
  readonly serviceName: string | undefined;
  /** Attributes of the resource, service.name included (merged over the SDK's default resource). */
  readonly resourceAttributes: Readonly<Record<string, string>>;
  /** OTEL_TRACES_SAMPLER and _ARG, already checked with samplerFrom. */
  readonly sampler: { name: string | undefined; arg: string | undefined };
  readonly headers: { request: string[]; response: string[]; sanitize: string[]; maxValueLength: number };
  readonly sensitiveQueryParams: string[];
  readonly batch: BatchOptions;
  readonly correlator: CorrelatorOptions;
  readonly maxLineBytes: number;
  readonly quicEvents: QuicEventLevel;
  readonly qlog: { readonly dir: string; readonly maxBytes: number } | undefined;
  readonly statusIntervalSec: number;
  /** SIGINT/SIGTERM: flush for at most this long; a source that ended: for as long as this without progress. */
  readonly shutdownTimeoutMs: number;
  readonly quiet: boolean;
  /** `--health-port`: the Kubernetes probes' server. */
  readonly health: HealthOptions;
}

type Values = OptionValues<typeof OPTION_TABLE>;

const ENV_HELP = `
Environment (flags win over variables):
${envHelp(OPTION_TABLE)}

Config file (--config FILE or H2O_OTEL_CONFIG, e.g. a mounted ConfigMap): a YAML mapping, one key per option,
named as its flag without "--": \`sample-ratio: 0.1\`, \`metrics: false\` for --no-metrics, switches true or
false, repeatable and comma-separated options as a list, --otlp-header as a mapping. Options with only variables
use their name in kebab-case: base-endpoint, traces-endpoint, env-headers, sampler-name, schedule-delay-ms, ...
Precedence: flag > variable > file > default. Unknown keys are an error.

Secrets: authorization, cookie, set-cookie, the usual API-key headers and any header named like *token*, *secret*,
*session*, *password*, *auth* are exported as "REDACTED" even when captured, whatever their case; so are the values
of sensitive query parameters (token, sig, key, code, X-Amz-Signature, ...) in url.query, url.path and URL-valued
headers (referer, location, ...). A --record file holds all of them in clear.

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
  const command = new Command('h2o-otel').description(
    'Turn H2O trace events (the h2olog socket, BPF on a running H2O, or a recorded capture) into OpenTelemetry ' +
      'spans: one SERVER span per HTTP/1, HTTP/2 and HTTP/3 request, linked to a span per connection, exported over OTLP.',
  );
  return addOptions(command, OPTION_TABLE)
    .version(VERSION, '--version', 'print the version and exit')
    .addHelpText('after', ENV_HELP)
    .showHelpAfterError('(run h2o-otel --help for usage)');
}

function sourceOf(v: Values): Source {
  if (v.socket !== undefined) return { kind: 'socket', path: v.socket };
  if (v.replay !== undefined) return { kind: 'replay', path: v.replay };
  if (v.pid !== undefined) return { kind: 'usdt', target: { kind: 'pid', pid: v.pid } };
  if (v.binary !== undefined) return { kind: 'usdt', target: { kind: 'binary', path: v.binary } };
  throw new InvalidArgumentError(
    'say where events come from: --socket PATH (the h2olog socket), --pid PID or --binary PATH (BPF), or --replay FILE',
  );
}

/** The OTLP exporter and the metrics: URLs, then each signal's headers, timeout and compression. */
function exportOf(v: Values): Pick<Options, 'exporter' | 'metrics'> {
  const endpoints = resolveEndpoints(v);
  const kind = v.exporter ?? (endpoints.configured ? 'otlp' : 'console');
  if (v.prometheusPort !== undefined && !v.metrics)
    throw new InvalidArgumentError(
      '--prometheus-port serves metrics, which --no-metrics turns off: drop one of them',
    );
  if (v.prometheusPort !== undefined && v.prometheusPort === v.healthPort)
    throw new InvalidArgumentError('--prometheus-port and --health-port must be different ports');
  const prometheus =
    v.prometheusPort === undefined ? undefined : { host: v.prometheusHost, port: v.prometheusPort };
  const metricsOf = (otlp: NonNullable<Options['metrics']>['otlp']): Options['metrics'] =>
    v.metrics && (otlp !== undefined || prometheus !== undefined) ? { otlp, prometheus } : undefined;
  if (kind !== 'otlp') return { exporter: { kind }, metrics: metricsOf(undefined) };
  const exporter = {
    kind,
    protocol: v.protocol,
    url: endpoints.tracesUrl,
    headers: { ...v.envHeaders, ...v.tracesHeaders, ...v.otlpHeader },
    timeoutMillis: v.tracesTimeout,
    compression: v.tracesCompression,
  };
  const metrics = {
    protocol: v.protocol,
    url: endpoints.metricsUrl,
    headers: { ...v.envHeaders, ...v.metricsHeaders, ...v.otlpHeader },
    timeoutMillis: v.metricsTimeout,
    compression: v.metricsCompression,
    intervalMs: v.metricsIntervalMs,
  };
  return { exporter, metrics: metricsOf(metrics) };
}

/**
 * Parse argv (node, script, ...args) with `env`; throws InvalidArgumentError with a message for the user, or
 * SamplerConfigError for OTEL_TRACES_SAMPLER(_ARG).
 */
export function resolveOptions(command: Command, argv: readonly string[], env: Env): Options {
  command.parse([...argv]);
  const configFile = readValue(command, OPTION_TABLE, 'config', env);
  const file = configFile === undefined ? undefined : readConfigFile(configFile, OPTION_TABLE);
  const { values: v, given } = readValues(command, OPTION_TABLE, env, file);
  const source = sourceOf(v);
  if (v.h2oStatus !== undefined && source.kind !== 'socket')
    throw new InvalidArgumentError(
      '--h2o-status counts the events H2O drops on the h2olog socket: use it with --socket (USDT counts its own losses)',
    );
  // Built once here only to reject a bad sampler before anything starts.
  samplerFrom(v.samplerName, v.samplerArg);

  return {
    source,
    record: v.record,
    force: v.force,
    socket: {
      sampleRatio: v.sampleRatio,
      sni: v.sni,
      addresses: v.address,
      applicationData: v.applicationData,
      reconnect: v.reconnect,
      h2oStatus: v.h2oStatus,
    },
    bpf: {
      probe: v.usdtCountOnly ? 'usdt' : v.bpf,
      debugFile: v.debugFile,
      btfCacheDir: v.btfCacheDir ?? defaultBtfCacheDir(env, env.HOME ?? homedir()),
    },
    usdt: {
      countOnly: v.usdtCountOnly,
      ringBytes: v.ringSize * 1024 * 1024,
      pollMs: v.pollMs,
      objectPath: v.bpfObject,
    },
    ...exportOf(v),
    serviceName: v.serviceName,
    resourceAttributes: resourceAttributes(v.resourceAttributes, v.serviceName),
    sampler: { name: v.samplerName, arg: v.samplerArg },
    headers: {
      request: v.captureRequestHeaders,
      response: v.captureResponseHeaders,
      sanitize: v.sanitizeHeaders,
      maxValueLength: v.maxHeaderLength,
    },
    sensitiveQueryParams: [...DEFAULT_SENSITIVE_QUERY_PARAMS, ...v.redactQueryParams].map((p) =>
      p.toLowerCase(),
    ),
    batch: {
      ...DEFAULT_BATCH_OPTIONS,
      maxQueueSize: v.maxQueueSize,
      maxExportBatchSize: v.batchSize,
      scheduledDelayMillis: v.scheduleDelayMs,
      exportTimeoutMillis: v.exportTimeoutMs,
      maxConcurrentExports: v.concurrentExports,
      stallMillis: v.shutdownTimeout,
    },
    correlator: {
      ...DEFAULT_CORRELATOR_OPTIONS,
      http1QuietMs: v.http1QuietMs,
      http2IdleMs: v.http2IdleMs,
      maxConnections: v.maxConnections,
      maxSpanEvents: v.maxSpanEvents,
    },
    maxLineBytes: v.maxLineBytes,
    // qlog is for packet-level tools (qvis): unless a level was chosen, subscribe to every packet.
    quicEvents: v.qlogDir !== undefined && !given.has('quicEvents') ? 'detailed' : v.quicEvents,
    qlog:
      v.qlogDir === undefined
        ? undefined
        : { dir: v.qlogDir, maxBytes: Math.round(v.qlogMaxMb * 1024 * 1024) },
    statusIntervalSec: v.statusInterval,
    shutdownTimeoutMs: v.shutdownTimeout,
    quiet: v.quiet,
    health: { port: v.healthPort, host: v.healthHost, exportFailureMs: v.readyExportFailureS * 1000 },
  };
}
