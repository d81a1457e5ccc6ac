// Option resolution on plain data: argv and an env object in, the Options the pipeline reads out.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CORRELATOR_OPTIONS } from '../../src/correlate/correlator.js';
import { DEFAULT_BATCH_OPTIONS } from '../../src/export/batch-processor.js';
import { OPTION_TABLE } from '../../src/cli/option-table.js';
import { buildCommand, resolveOptions } from '../../src/cli/options.js';
import type { Env, Options } from '../../src/cli/options.js';
import { SamplerConfigError } from '../../src/otel/sampler.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../../src/otel/url.js';
import { DEFAULT_BPF_OBJECT } from '../../src/sources/usdt/defaults.js';

/** Commander prints its own errors; the tests read them from the thrown error instead. */
function resolve(args: string[], env: Env = {}): Options {
  const command = buildCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  return resolveOptions(command, ['node', 'h2o-otel', ...args], env);
}

const replay = (args: string[] = [], env: Env = {}): Options =>
  resolve(['--replay', 'x.jsonl', ...args], env);
const otlp = (args: string[] = [], env: Env = {}): Options => replay(['--exporter', 'otlp', ...args], env);

function otlpExporter(o: Options): Extract<Options['exporter'], { kind: 'otlp' }> {
  assert.equal(o.exporter.kind, 'otlp');
  return o.exporter;
}

function metricsOf(o: Options): NonNullable<NonNullable<Options['metrics']>['otlp']> {
  assert.ok(o.metrics?.otlp !== undefined, 'metrics are exported over OTLP');
  return o.metrics.otlp;
}

test('without flags or variables, every option has its default', () => {
  const o = replay();
  assert.deepEqual(o.source, { kind: 'replay', path: 'x.jsonl' });
  assert.equal(o.record, undefined);
  assert.deepEqual(o.socket, {
    sampleRatio: undefined,
    sni: [],
    addresses: [],
    applicationData: true,
    reconnect: true,
    h2oStatus: undefined,
  });
  assert.deepEqual(o.usdt, {
    countOnly: false,
    ringBytes: 16 << 20,
    pollMs: 10,
    objectPath: DEFAULT_BPF_OBJECT,
  });
  assert.deepEqual(o.exporter, { kind: 'console' });
  assert.equal(o.metrics, undefined);
  assert.equal(o.serviceName, undefined);
  assert.deepEqual(o.resourceAttributes, { 'service.name': 'h2o' });
  assert.deepEqual(o.sampler, { name: undefined, arg: undefined });
  assert.deepEqual(o.headers, { request: [], response: [], sanitize: [], maxValueLength: 4096 });
  assert.deepEqual(
    o.sensitiveQueryParams,
    DEFAULT_SENSITIVE_QUERY_PARAMS.map((p) => p.toLowerCase()),
  );
  assert.deepEqual(o.batch, DEFAULT_BATCH_OPTIONS);
  assert.deepEqual(o.correlator, DEFAULT_CORRELATOR_OPTIONS);
  assert.equal(o.maxLineBytes, 1 << 20);
  assert.equal(o.quicEvents, 'basic');
  assert.equal(o.qlog, undefined);
  assert.equal(o.statusIntervalSec, 10);
  assert.equal(o.quiet, false);
});

test('with OTLP export and no endpoint: a local collector over HTTP, metrics every minute, no headers', () => {
  const o = otlp();
  assert.deepEqual(o.exporter, {
    kind: 'otlp',
    protocol: 'http/protobuf',
    url: 'http://localhost:4318/v1/traces',
    headers: {},
    timeoutMillis: 10_000,
    compression: 'none',
  });
  assert.deepEqual(o.metrics, {
    otlp: {
      protocol: 'http/protobuf',
      url: 'http://localhost:4318/v1/metrics',
      headers: {},
      timeoutMillis: 10_000,
      compression: 'none',
      intervalMs: 60_000,
    },
    prometheus: undefined,
  });
});

test('every flag sets its option', () => {
  // prettier-ignore
  const o = resolve([
    '--socket', '/run/h2olog.sock',
    '--record', 'rec.jsonl',
    '--sample-ratio', '0.25',
    '--sni', 'a.example', '--sni', 'b.example',
    '--address', '10.0.0.1',
    '--no-application-data',
    '--no-reconnect',
    '--h2o-status', 'http://127.0.0.1:8080/server-status',
    '--quic-events', 'none',
    '--qlog-dir', '/tmp/q',
    '--qlog-max-mb', '0.5',
    '--max-span-events', '7',
    '--ring-size', '4',
    '--usdt-count-only',
    '--poll-ms', '3',
    '--bpf-object', '/opt/x.bpf.o',
    '--exporter', 'otlp',
    '--endpoint', 'http://collector:4317',
    '--protocol', 'grpc',
    '--otlp-header', 'x-a=1', '--otlp-header', 'X-B=two%20words',
    '--service-name', 'edge',
    '--no-metrics',
    '--capture-request-headers', 'User-Agent, x-request-id',
    '--capture-response-headers', '*',
    '--sanitize-headers', 'x-secret',
    '--redact-query-params', 'Session',
    '--max-header-length', '100',
    '--max-queue-size', '10',
    '--batch-size', '20',
    '--concurrent-exports', '2',
    '--http1-quiet-ms', '0',
    '--http2-idle-ms', '5',
    '--max-connections', '9',
    '--max-line-bytes', '2048',
    '--status-interval', '0',
    '--quiet',
  ]);
  assert.deepEqual(o.source, { kind: 'socket', path: '/run/h2olog.sock' });
  assert.equal(o.record, 'rec.jsonl');
  assert.deepEqual(o.socket, {
    sampleRatio: 0.25,
    sni: ['a.example', 'b.example'],
    addresses: ['10.0.0.1'],
    applicationData: false,
    reconnect: false,
    h2oStatus: 'http://127.0.0.1:8080/server-status',
  });
  assert.deepEqual(o.usdt, { countOnly: true, ringBytes: 4 << 20, pollMs: 3, objectPath: '/opt/x.bpf.o' });
  assert.deepEqual(o.exporter, {
    kind: 'otlp',
    protocol: 'grpc',
    url: 'http://collector:4317',
    headers: { 'x-a': '1', 'x-b': 'two words' },
    timeoutMillis: 10_000,
    compression: 'none',
  });
  assert.equal(o.metrics, undefined);
  assert.equal(o.serviceName, 'edge');
  assert.equal(o.resourceAttributes['service.name'], 'edge');
  assert.deepEqual(o.headers, {
    request: ['user-agent', 'x-request-id'],
    response: ['*'],
    sanitize: ['x-secret'],
    maxValueLength: 100,
  });
  assert.equal(o.sensitiveQueryParams.at(-1), 'session');
  assert.deepEqual(o.batch, {
    ...DEFAULT_BATCH_OPTIONS,
    maxQueueSize: 10,
    maxExportBatchSize: 20,
    maxConcurrentExports: 2,
  });
  assert.deepEqual(o.correlator, {
    ...DEFAULT_CORRELATOR_OPTIONS,
    http1QuietMs: 0,
    http2IdleMs: 5,
    maxConnections: 9,
    maxSpanEvents: 7,
  });
  assert.equal(o.maxLineBytes, 2048);
  assert.equal(o.quicEvents, 'none');
  assert.deepEqual(o.qlog, { dir: '/tmp/q', maxBytes: 524_288 });
  assert.equal(o.statusIntervalSec, 0);
  assert.equal(o.quiet, true);
});

test('the BPF sources: --pid and --binary', () => {
  assert.deepEqual(resolve(['--pid', '42']).source, { kind: 'usdt', target: { kind: 'pid', pid: 42 } });
  assert.deepEqual(resolve(['--binary', '/usr/bin/h2o']).source, {
    kind: 'usdt',
    target: { kind: 'binary', path: '/usr/bin/h2o' },
  });
});

test('BPF: --bpf auto by default; request, usdt; --debug-file, --btf-cache-dir; --usdt-count-only means usdt', () => {
  const d = resolve(['--pid', '42'], { HOME: '/home/u' });
  assert.deepEqual(d.bpf, {
    probe: 'auto',
    debugFile: undefined,
    btfCacheDir: '/home/u/.cache/h2o-otel/btf',
  });
  assert.equal(resolve(['--pid', '42'], { XDG_CACHE_HOME: '/c' }).bpf.btfCacheDir, '/c/h2o-otel/btf');
  // prettier-ignore
  const o = resolve(['--pid', '42', '--bpf', 'request', '--debug-file', '/d/h2o.debug', '--btf-cache-dir', '/b']);
  assert.deepEqual(o.bpf, { probe: 'request', debugFile: '/d/h2o.debug', btfCacheDir: '/b' });
  assert.equal(resolve(['--binary', '/h2o', '--bpf', 'usdt']).bpf.probe, 'usdt');
  assert.equal(resolve(['--pid', '42', '--usdt-count-only']).bpf.probe, 'usdt');
  assert.throws(() => resolve(['--pid', '42', '--bpf', 'kprobe']), /Allowed choices are auto, request, usdt/);
});

const CONFIG_FILE = join(mkdtempSync(join(tmpdir(), 'h2o-otel-options-')), 'config.yaml');
writeFileSync(CONFIG_FILE, 'service-name: from-file\n');

/** Each variable of the table, a value, and where that value must show up. */
// prettier-ignore
const VARIABLES: ReadonlyArray<[string, string, (o: Options) => unknown, unknown]> = [
  ['OTEL_EXPORTER_OTLP_ENDPOINT', 'http://c:4318/', (o) => otlpExporter(o).url, 'http://c:4318/v1/traces'],
  ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'http://c:4318/t', (o) => otlpExporter(o).url, 'http://c:4318/t'],
  ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'http://m:4318/m', (o) => metricsOf(o).url, 'http://m:4318/m'],
  ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc', (o) => otlpExporter(o).protocol, 'grpc'],
  ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'grpc', (o) => metricsOf(o).protocol, 'grpc'],
  ['OTEL_EXPORTER_OTLP_HEADERS', 'a=1,b=x%3Dy', (o) => metricsOf(o).headers, { a: '1', b: 'x=y' }],
  ['OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'a=1', (o) => otlpExporter(o).headers, { a: '1' }],
  ['OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'a=1', (o) => metricsOf(o).headers, { a: '1' }],
  ['OTEL_EXPORTER_OTLP_TIMEOUT', '500', (o) => [otlpExporter(o).timeoutMillis, metricsOf(o).timeoutMillis], [500, 500]],
  ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', '500', (o) => otlpExporter(o).timeoutMillis, 500],
  ['OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', '500', (o) => metricsOf(o).timeoutMillis, 500],
  ['OTEL_EXPORTER_OTLP_COMPRESSION', 'gzip', (o) => [otlpExporter(o).compression, metricsOf(o).compression], ['gzip', 'gzip']],
  ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'gzip', (o) => otlpExporter(o).compression, 'gzip'],
  ['OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', 'gzip', (o) => metricsOf(o).compression, 'gzip'],
  ['OTEL_SERVICE_NAME', 'edge', (o) => [o.serviceName, o.resourceAttributes['service.name']], ['edge', 'edge']],
  ['OTEL_RESOURCE_ATTRIBUTES', 'team=web,region=eu%2C1', (o) => o.resourceAttributes, { 'service.name': 'h2o', team: 'web', region: 'eu,1' }],
  ['OTEL_TRACES_SAMPLER', 'always_off', (o) => o.sampler.name, 'always_off'],
  ['OTEL_TRACES_SAMPLER_ARG', '0.5', (o) => o.sampler.arg, '0.5'],
  ['OTEL_METRICS_EXPORTER', 'none', (o) => o.metrics, undefined],
  ['OTEL_METRIC_EXPORT_INTERVAL', '1000', (o) => metricsOf(o).intervalMs, 1000],
  ['OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS', 'Accept,X-Id', (o) => o.headers.request, ['accept', 'x-id']],
  ['OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS', 'Server', (o) => o.headers.response, ['server']],
  ['OTEL_BSP_MAX_QUEUE_SIZE', '100', (o) => o.batch.maxQueueSize, 100],
  ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE', '100', (o) => o.batch.maxExportBatchSize, 100],
  ['OTEL_BSP_SCHEDULE_DELAY', '100', (o) => o.batch.scheduledDelayMillis, 100],
  ['OTEL_BSP_EXPORT_TIMEOUT', '100', (o) => o.batch.exportTimeoutMillis, 100],
  ['H2O_OTEL_CONFIG', CONFIG_FILE, (o) => o.serviceName, 'from-file'],
  ['H2O_OTEL_HEALTH_PORT', '8888', (o) => o.health.port, 8888],
  ['H2O_OTEL_PROMETHEUS_PORT', '9464', (o) => o.metrics?.prometheus?.port, 9464],
  ['OTEL_EXPORTER_PROMETHEUS_PORT', '9465', (o) => o.metrics?.prometheus?.port, 9465],
  ['OTEL_EXPORTER_PROMETHEUS_HOST', '127.0.0.1', (o) => o.metrics?.prometheus?.host, undefined],
];

test('each variable sets its option', () => {
  for (const [name, value, read, expected] of VARIABLES) {
    assert.deepEqual(read(otlp([], { [name]: value })), expected, name);
  }
});

test('every variable of the option table is tested above', () => {
  const tested = new Set(VARIABLES.map(([name]) => name));
  for (const spec of Object.values(OPTION_TABLE))
    for (const name of spec.env ?? []) assert.ok(tested.has(name), `${name} has no case in VARIABLES`);
});

test('a flag wins over its variable', () => {
  const env: Env = {
    OTEL_BSP_MAX_QUEUE_SIZE: '100',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '100',
    OTEL_SERVICE_NAME: 'from-env',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
    OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS: 'accept',
    OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS: 'server',
    OTEL_METRICS_EXPORTER: 'otlp',
  };
  // prettier-ignore
  const o = otlp(
    [
      '--max-queue-size', '5',
      '--batch-size', '6',
      '--service-name', 'from-flag',
      '--protocol', 'grpc',
      '--capture-request-headers', 'x-req',
      '--capture-response-headers', 'x-res',
      '--no-metrics',
    ],
    env,
  );
  assert.equal(o.batch.maxQueueSize, 5);
  assert.equal(o.batch.maxExportBatchSize, 6);
  assert.equal(o.serviceName, 'from-flag');
  assert.equal(o.resourceAttributes['service.name'], 'from-flag');
  assert.equal(otlpExporter(o).protocol, 'grpc');
  assert.deepEqual(o.headers.request, ['x-req']);
  assert.deepEqual(o.headers.response, ['x-res']);
  assert.equal(o.metrics, undefined);
});

test("a signal's own variable wins over the general one; a blank variable counts as unset", () => {
  const o = otlp([], {
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2000',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: 'none',
    OTEL_BSP_MAX_QUEUE_SIZE: '  ',
    OTEL_SERVICE_NAME: '',
  });
  const traces = otlpExporter(o);
  const metrics = metricsOf(o);
  assert.equal(traces.protocol, 'grpc');
  assert.deepEqual([traces.timeoutMillis, metrics.timeoutMillis], [2000, 1000]);
  assert.deepEqual([traces.compression, metrics.compression], ['gzip', 'none']);
  assert.equal(o.batch.maxQueueSize, DEFAULT_BATCH_OPTIONS.maxQueueSize);
  assert.equal(o.resourceAttributes['service.name'], 'h2o');
});

test('export headers: the general variable, then the signal one, then --otlp-header, by name', () => {
  const o = otlp(['--otlp-header', 'x-c=flag'], {
    OTEL_EXPORTER_OTLP_HEADERS: 'x-a=all,x-b=all,x-c=all',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'X-B=traces,x-c=traces',
    OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-a=metrics',
  });
  assert.deepEqual(otlpExporter(o).headers, { 'x-a': 'all', 'x-b': 'traces', 'x-c': 'flag' });
  assert.deepEqual(metricsOf(o).headers, { 'x-a': 'metrics', 'x-b': 'all', 'x-c': 'flag' });
});

test('invalid values are usage errors naming the flag or the variable', () => {
  // prettier-ignore
  const cases: ReadonlyArray<[string[], Env, RegExp]> = [
    [['--pid', '0'], {}, /--pid must be an integer >= 1/],
    [['--replay', 'x', '--sample-ratio', '2'], {}, /--sample-ratio must be a number between 0 and 1/],
    [['--replay', 'x', '--ring-size', '3'], {}, /--ring-size must be a power of two between 1 and 1024/],
    [['--replay', 'x', '--qlog-max-mb', '0'], {}, /--qlog-max-mb must be a positive number/],
    [['--replay', 'x', '--max-line-bytes', '10'], {}, /--max-line-bytes must be an integer >= 1024/],
    [['--replay', 'x', '--endpoint', 'collector:4317'], {}, /--endpoint must be an http:\/\/ or https:\/\/ URL/],
    [['--replay', 'x', '--otlp-header', 'novalue'], {}, /--otlp-header must look like key=value/],
    [['--replay', 'x', '--protocol', 'udp'], {}, /Allowed choices are grpc, http\/protobuf/],
    [['--replay', 'x'], { OTEL_BSP_MAX_QUEUE_SIZE: '0' }, /^OTEL_BSP_MAX_QUEUE_SIZE must be an integer >= 1, got "0"$/],
    [['--replay', 'x'], { OTEL_METRIC_EXPORT_INTERVAL: 'soon' }, /^OTEL_METRIC_EXPORT_INTERVAL must be an integer >= 1, got "soon"$/],
    [['--replay', 'x'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, /^OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http\/protobuf, got "http\/json"$/],
    [['--replay', 'x'], { OTEL_EXPORTER_OTLP_TIMEOUT: '-1' }, /^OTEL_EXPORTER_OTLP_TIMEOUT must be an integer >= 1, got "-1"$/],
    [['--replay', 'x'], { OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'zstd' }, /^OTEL_EXPORTER_OTLP_TRACES_COMPRESSION must be none or gzip, got "zstd"$/],
    [['--replay', 'x'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT must be an http:\/\/ or https:\/\/ URL, got "collector:4318"$/],
    [['--replay', 'x'], { OTEL_RESOURCE_ATTRIBUTES: 'a=b=c' }, /^OTEL_RESOURCE_ATTRIBUTES must be key=value pairs/],
    [[], {}, /say where events come from: --socket PATH .* or --replay FILE/],
    [['--socket', 's', '--replay', 'x'], {}, /cannot be used with option '--replay/],
    [['--pid', '1', '--binary', 'h2o'], {}, /cannot be used with option '--binary/],
    [['--replay', 'x', '--h2o-status', 'http://h/s'], {}, /--h2o-status counts the events H2O drops on the h2olog socket/],
  ];
  for (const [args, env, message] of cases) {
    assert.throws(
      () => resolve(args, env),
      (err: Error) => {
        assert.match(err.message, message);
        return true;
      },
      `${args.join(' ')} ${JSON.stringify(env)}`,
    );
  }
});

test('the sampler is checked during option resolution, with the sampler’s own message', () => {
  assert.throws(
    () => replay([], { OTEL_TRACES_SAMPLER: 'sometimes' }),
    (err: unknown) =>
      err instanceof SamplerConfigError &&
      /^OTEL_TRACES_SAMPLER="sometimes" is not supported/.test(err.message),
  );
  assert.throws(
    () => replay([], { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }),
    (err: unknown) =>
      err instanceof SamplerConfigError &&
      /OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1/.test(err.message),
  );
  assert.deepEqual(
    replay([], { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }).sampler,
    {
      name: 'parentbased_traceidratio',
      arg: '0.1',
    },
  );
});

test('--qlog-dir subscribes to every packet unless --quic-events chose a level', () => {
  assert.equal(replay(['--qlog-dir', '/tmp/q']).quicEvents, 'detailed');
  assert.equal(replay(['--qlog-dir', '/tmp/q', '--quic-events', 'basic']).quicEvents, 'basic');
});

test('metrics go over OTLP with the OTLP exporter, to Prometheus when asked, and nowhere else', () => {
  assert.equal(
    replay(['--exporter', 'console'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).metrics,
    undefined,
  );
  assert.equal(
    replay([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).metrics?.otlp?.url,
    'http://c:4318/v1/metrics',
  );
  assert.deepEqual(replay(['--exporter', 'none', '--prometheus-port', '9464']).metrics, {
    otlp: undefined,
    prometheus: { host: '0.0.0.0', port: 9464 },
  });
  assert.deepEqual(
    replay(['--prometheus-port', '9464', '--prometheus-host', '127.0.0.1'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
    }).metrics?.prometheus,
    { host: '127.0.0.1', port: 9464 },
  );
  assert.throws(() => replay(['--prometheus-port', '9464', '--no-metrics']), /--no-metrics turns off/);
  assert.throws(
    () => replay(['--prometheus-port', '9464', '--health-port', '9464']),
    /--prometheus-port and --health-port must be different ports/,
  );
  assert.throws(() => replay(['--prometheus-port', '0']), /--prometheus-port.*must be a TCP port/);
  assert.deepEqual(replay(['--exporter', 'none']).exporter, { kind: 'none' });
});
