/**
 * Every option of h2o-otel, once: its flag, its variables, its default, its parser and its help. The commander
 * options, the environment help and the type of the resolved values are generated from this table; rows are
 * in the order of --help.
 */
import { DEFAULT_CORRELATOR_OPTIONS } from '../correlate/correlator.js';
import { DEFAULT_MAX_LINE_BYTES } from '../events/decode-json.js';
import { DEFAULT_BATCH_OPTIONS } from '../export/batch-processor.js';
import { DEFAULT_OTLP_COMPRESSION, DEFAULT_OTLP_TIMEOUT_MS } from '../export/otlp.js';
import { parseNameList } from '../otel/header-policy.js';
import { SAMPLER_NAMES } from '../otel/sampler.js';
import { DEFAULT_BPF_OBJECT } from '../sources/usdt/defaults.js';
import type { OptionSpec } from './option-spec.js';
import { choice, list, record, text, toggle, value } from './option-spec.js';
import {
  headerArgument,
  headerList,
  httpUrl,
  integerAtLeast,
  positiveNumber,
  ratio,
  ringSizeMiB,
  tcpPort,
} from './parsers.js';
import { H2O_STATUS_INTERVAL_MS } from './intervals.js';
import { H2OLOG_FORMAT_OPTIONS } from './option-rows-h2olog-format.js';
import { METRICS_OPTIONS } from './option-rows-metrics.js';
import { TAIL_SAMPLING_OPTIONS } from './option-rows-tail-sampling.js';
import { DEFAULT_SERVICE_NAME, resourceAttributeList } from './resource.js';

const COMPRESSIONS = ['none', 'gzip'] as const;

/** The headers of the variable that names no signal; the signal's own (and --otlp-header) win over them. */
const headers = (env: string, help: string): OptionSpec<Record<string, string>> => ({
  env: [env],
  help,
  default: {},
  parse: headerList,
});

export const OPTION_TABLE = {
  socket: text({
    flag: '--socket <path>',
    help: "H2O's h2olog unix socket (a host with `h2olog: appdata`)",
    conflicts: ['replay'],
  }),
  replay: text({
    flag: '--replay <file>',
    help: 'read h2olog JSON lines from a file, or - for stdin; exit when done',
    conflicts: ['pid', 'binary'],
  }),
  pid: value({
    flag: '--pid <pid>',
    help: 'BPF: trace this H2O process (see --bpf); exit when it exits',
    parse: integerAtLeast(1),
    conflicts: ['socket', 'binary'],
  }),
  binary: text({
    flag: '--binary <path>',
    help: 'BPF: trace every process of this h2o executable, including ones started later (see --bpf)',
    conflicts: ['socket'],
  }),
  bpf: choice({
    flag: '--bpf <probe>',
    help:
      "BPF: request (one uprobe at h2o_dispose_request per request, struct layouts from the binary's debug " +
      "info; works without DTrace), usdt (H2O's USDT probes: every event, QUIC detail; needs -DWITH_DTRACE=ON), " +
      'or auto (request when the layouts can be had, else usdt, saying why)',
    choices: ['auto', 'request', 'usdt'],
    default: 'auto',
  }),
  debugFile: text({
    flag: '--debug-file <path>',
    help:
      "BPF request probe: the h2o binary's separate debug file, when the binary is stripped and its debug " +
      'symbols are not under /usr/lib/debug (the default: the binary itself, then /usr/lib/debug by build-id)',
  }),
  btfCacheDir: text({
    flag: '--btf-cache-dir <dir>',
    help:
      'BPF request probe: where the struct layouts made from debug info (BTF, by pahole) are kept per build-id ' +
      '(default: $XDG_CACHE_HOME/h2o-otel/btf, else ~/.cache/h2o-otel/btf)',
  }),
  record: text({
    flag: '--record <file>',
    help:
      'also write every decoded event as h2olog JSON lines (replayable). The file holds every header value and ' +
      'URL in clear (cookies, tokens): it is created mode 0600, and an existing file is kept unless --force',
  }),
  force: toggle({
    flag: '--force',
    help: '--record: replace an existing file',
  }),
  sampleRatio: value({
    flag: '--sample-ratio <ratio>',
    help: 'trace this fraction of connections, decided once per connection (0..1); in H2O (socket) or in BPF',
    parse: ratio,
  }),
  sni: list({
    flag: '--sni <name>',
    help: 'socket: only connections with this TLS SNI (repeatable)',
    parse: (raw) => raw,
  }),
  address: list({
    flag: '--address <ip>',
    help: 'socket: only connections from this client IP (repeatable)',
    parse: (raw) => raw,
  }),
  applicationData: toggle({
    flag: '--no-application-data',
    help: 'socket: do not ask H2O for header names and values',
  }),
  reconnect: toggle({
    flag: '--no-reconnect',
    help: 'socket: exit when the stream ends or cannot be opened, instead of retrying',
  }),
  h2oStatus: value({
    flag: '--h2o-status <url>',
    help:
      "socket: H2O's status handler (e.g. http://127.0.0.1:8080/server-status), read every " +
      `${H2O_STATUS_INTERVAL_MS / 1000} s for the events H2O dropped because this reader fell behind (h2olog.lost)`,
    parse: httpUrl,
  }),
  quicEvents: choice({
    flag: '--quic-events <level>',
    help:
      'QUIC and TLS detail on HTTP/3 spans: none, basic (handshake, losses, PTOs, congestion, close, streams), ' +
      'or detailed (also every packet; the default with --qlog-dir)',
    choices: ['none', 'basic', 'detailed'],
    default: 'basic',
  }),
  qlogDir: text({
    flag: '--qlog-dir <dir>',
    help: 'also write each QUIC connection as a qlog file (.sqlog) in this directory (created 0700; files 0600)',
  }),
  qlogMaxMb: value({
    flag: '--qlog-max-mb <n>',
    help: 'keep the qlog directory under this size (MiB, fractions allowed); the oldest files are deleted first',
    parse: positiveNumber,
    default: 256,
  }),
  ...H2OLOG_FORMAT_OPTIONS,
  maxSpanEvents: value({
    flag: '--max-span-events <n>',
    help: 'QUIC/TLS events kept per span; more are counted as dropped (totals stay exact)',
    parse: integerAtLeast(1),
    default: DEFAULT_CORRELATOR_OPTIONS.maxSpanEvents,
  }),
  ringSize: value({
    flag: '--ring-size <MiB>',
    help: 'BPF: ring buffer size, a power of two',
    parse: ringSizeMiB,
    default: 16,
  }),
  usdtCountOnly: toggle({
    flag: '--usdt-count-only',
    help: 'USDT: only count probe hits in BPF (what attaching costs H2O, for benchmarks); no spans; implies --bpf usdt',
  }),
  pollMs: value({
    flag: '--poll-ms <ms>',
    help: 'BPF: how often the ring buffer is drained',
    parse: integerAtLeast(1),
    default: 10,
  }),
  bpfObject: value({
    flag: '--bpf-object <path>',
    help: 'USDT: the compiled BPF program to load (--bpf usdt)',
    parse: (raw) => raw,
    default: DEFAULT_BPF_OBJECT,
    defaultHelp: "h2o-otel's native/h2o_usdt.bpf.o",
  }),
  exporter: choice({
    flag: '--exporter <kind>',
    help: 'where spans go (default: otlp when an endpoint is set, else console)',
    choices: ['console', 'otlp', 'none'],
  }),
  endpoint: value({
    flag: '--endpoint <url>',
    help: 'OTLP endpoint, e.g. http://localhost:4318 (HTTP) or http://localhost:4317 (gRPC)',
    parse: httpUrl,
  }),
  baseEndpoint: value({
    env: ['OTEL_EXPORTER_OTLP_ENDPOINT'],
    help: 'base OTLP endpoint, as --endpoint; setting it selects OTLP export',
    parse: httpUrl,
  }),
  tracesEndpoint: value({
    env: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    help: 'full traces URL, used as is (--endpoint wins)',
    parse: httpUrl,
  }),
  metricsEndpoint: value({
    env: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'],
    help: "full metrics URL for h2o-otel's own counters (default: next to the traces)",
    parse: httpUrl,
  }),
  protocol: choice({
    flag: '--protocol <protocol>',
    env: ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'],
    help: 'OTLP protocol',
    choices: ['grpc', 'http/protobuf'],
    default: 'http/protobuf',
  }),
  otlpHeader: record({
    flag: '--otlp-header <key=value>',
    help: 'header sent with every export (repeatable)',
    parse: headerArgument,
  }),
  envHeaders: headers('OTEL_EXPORTER_OTLP_HEADERS', 'k=v,k2=v2 sent with every export, values URL-encoded'),
  tracesHeaders: headers('OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'k=v,k2=v2 sent with trace exports'),
  metricsHeaders: headers('OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'k=v,k2=v2 sent with metric exports'),
  tracesTimeout: value({
    env: ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    help: 'ms one trace export request may take',
    parse: integerAtLeast(1),
    default: DEFAULT_OTLP_TIMEOUT_MS,
  }),
  metricsTimeout: value({
    env: ['OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    help: 'ms one metric export request may take',
    parse: integerAtLeast(1),
    default: DEFAULT_OTLP_TIMEOUT_MS,
  }),
  tracesCompression: choice({
    env: ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    help: 'none | gzip, for trace exports',
    choices: COMPRESSIONS,
    default: DEFAULT_OTLP_COMPRESSION,
  }),
  metricsCompression: choice({
    env: ['OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    help: 'none | gzip, for metric exports',
    choices: COMPRESSIONS,
    default: DEFAULT_OTLP_COMPRESSION,
  }),
  serviceName: text({
    flag: '--service-name <name>',
    env: ['OTEL_SERVICE_NAME'],
    help: `service.name of the spans (default "${DEFAULT_SERVICE_NAME}")`,
  }),
  resourceAttributes: value({
    env: ['OTEL_RESOURCE_ATTRIBUTES'],
    help: 'extra resource attributes, k=v,k2=v2, percent-encoded',
    parse: resourceAttributeList,
    default: {},
  }),
  samplerName: text({
    env: ['OTEL_TRACES_SAMPLER'],
    help: `${SAMPLER_NAMES.join(' | ')}, decided per request (default parentbased_always_on)`,
  }),
  samplerArg: text({
    env: ['OTEL_TRACES_SAMPLER_ARG'],
    help: 'the ratio of the *traceidratio samplers, 0..1 (default 1)',
  }),
  ...TAIL_SAMPLING_OPTIONS,
  metrics: toggle({
    flag: '--no-metrics',
    env: ['OTEL_METRICS_EXPORTER'],
    help: "no metrics at all: neither the RED metrics nor h2o-otel's own counters, over OTLP or Prometheus",
    envHelp: 'none: no metrics at all',
    parse: (raw) => raw.trim() !== 'none',
  }),
  metricsIntervalMs: value({
    env: ['OTEL_METRIC_EXPORT_INTERVAL'],
    help: 'ms between OTLP exports of the metrics',
    parse: integerAtLeast(1),
    default: 60_000,
  }),
  ...METRICS_OPTIONS,
  captureRequestHeaders: value({
    flag: '--capture-request-headers <names>',
    env: ['OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS'],
    help: 'request headers to export as attributes, comma-separated, or *; secret ones are REDACTED',
    parse: parseNameList,
    default: [],
  }),
  captureResponseHeaders: value({
    flag: '--capture-response-headers <names>',
    env: ['OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS'],
    help: 'response headers to export as attributes, comma-separated, or *; secret ones are REDACTED',
    parse: parseNameList,
    default: [],
  }),
  sanitizeHeaders: value({
    flag: '--sanitize-headers <names>',
    help: 'more header names whose values are always REDACTED (in any case or spelling)',
    parse: parseNameList,
    default: [],
  }),
  redactQueryParams: value({
    flag: '--redact-query-params <names>',
    help: 'more query parameters whose values are REDACTED (in any case or percent-encoding)',
    parse: parseNameList,
    default: [],
  }),
  maxHeaderLength: value({
    flag: '--max-header-length <n>',
    help: 'longer header values are cut and flagged (USDT copies at most 4096 bytes)',
    parse: integerAtLeast(1),
    default: 4096,
  }),
  maxQueueSize: value({
    flag: '--max-queue-size <n>',
    env: ['OTEL_BSP_MAX_QUEUE_SIZE'],
    help: 'spans queued before new ones are dropped (and counted)',
    parse: integerAtLeast(1),
    default: DEFAULT_BATCH_OPTIONS.maxQueueSize,
  }),
  batchSize: value({
    flag: '--batch-size <n>',
    env: ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE'],
    help:
      'most spans per export; while no export is in flight, one starts as soon as ' +
      `${DEFAULT_BATCH_OPTIONS.minExportBatchSize} spans wait`,
    envHelp: 'most spans per export',
    parse: integerAtLeast(1),
    default: DEFAULT_BATCH_OPTIONS.maxExportBatchSize,
  }),
  scheduleDelayMs: value({
    env: ['OTEL_BSP_SCHEDULE_DELAY'],
    help: 'ms before a partial batch is sent',
    parse: integerAtLeast(1),
    default: DEFAULT_BATCH_OPTIONS.scheduledDelayMillis,
  }),
  exportTimeoutMs: value({
    env: ['OTEL_BSP_EXPORT_TIMEOUT'],
    help: 'ms one export attempt may take',
    parse: integerAtLeast(1),
    default: DEFAULT_BATCH_OPTIONS.exportTimeoutMillis,
  }),
  concurrentExports: value({
    flag: '--concurrent-exports <n>',
    help: 'exports in flight at once',
    parse: integerAtLeast(1),
    default: DEFAULT_BATCH_OPTIONS.maxConcurrentExports,
  }),
  http1QuietMs: value({
    flag: '--http1-quiet-ms <ms>',
    help: 'an HTTP/1 request ends this long after its last write',
    parse: integerAtLeast(0),
    default: DEFAULT_CORRELATOR_OPTIONS.http1QuietMs,
  }),
  http2IdleMs: value({
    flag: '--http2-idle-ms <ms>',
    help: 'an HTTP/2 connection ends after this long without events',
    parse: integerAtLeast(0),
    default: DEFAULT_CORRELATOR_OPTIONS.http2IdleMs,
  }),
  maxConnections: value({
    flag: '--max-connections <n>',
    help: 'open connections tracked at most (oldest evicted, counted)',
    parse: integerAtLeast(1),
    default: DEFAULT_CORRELATOR_OPTIONS.maxConnections,
  }),
  maxLineBytes: value({
    flag: '--max-line-bytes <n>',
    help: 'longer input lines are dropped and counted',
    parse: integerAtLeast(1024),
    default: DEFAULT_MAX_LINE_BYTES,
  }),
  shutdownTimeout: value({
    flag: '--shutdown-timeout <ms>',
    help:
      'on SIGINT/SIGTERM, flush spans for at most this long, then count what is unsent as dropped and exit 0; ' +
      'when the source ends by itself, the flush goes on while exports progress and stops after this long without ' +
      '(a replay likewise waits for the collector while it makes progress)',
    parse: integerAtLeast(0),
    default: 5_000,
  }),
  healthPort: value({
    flag: '--health-port <port>',
    env: ['H2O_OTEL_HEALTH_PORT'],
    help: 'serve GET /healthz and /readyz (JSON) on this TCP port, for Kubernetes probes (default: off)',
    parse: tcpPort,
  }),
  healthHost: value({
    flag: '--health-host <addr>',
    help: "the health port's address; the default (every address) lets the kubelet reach it on the pod IP",
    parse: (raw) => raw.trim(),
    default: '0.0.0.0',
  }),
  readyExportFailureS: value({
    flag: '--ready-export-failure-s <seconds>',
    help: '/readyz fails once exports have failed for this long without a success (0: exports never do)',
    parse: integerAtLeast(0),
    default: 60,
  }),
  statusInterval: value({
    flag: '--status-interval <seconds>',
    help: 'status line on stderr every N seconds, 0 for none',
    parse: integerAtLeast(0),
    default: 10,
  }),
  quiet: toggle({
    flag: '-q, --quiet',
    help: 'no status lines or notices on stderr (errors still print)',
  }),
  config: text({
    flag: '--config <file>',
    env: ['H2O_OTEL_CONFIG'],
    help: 'read options from this YAML file, keys named as the flags (see "Config file" below)',
    envHelp: 'YAML file of options',
  }),
};
