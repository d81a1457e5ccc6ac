// --help lists every flag of the option table and every variable, in-process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommanderError } from 'commander';
import { OPTION_TABLE } from '../../src/cli/option-table.js';
import { buildCommand } from '../../src/cli/options.js';

function helpText(): string {
  let out = '';
  const command = buildCommand()
    .exitOverride()
    .configureOutput({ writeOut: (s) => (out += s) });
  assert.throws(
    () => command.parse(['node', 'h2o-otel', '--help']),
    (err: unknown) => err instanceof CommanderError && err.code === 'commander.helpDisplayed',
  );
  return out;
}

/** The long name of a commander spelling: `-q, --quiet` → `--quiet`. */
const longName = (flag: string): string => /--[a-z0-9-]+/.exec(flag)![0];

/** The flags of h2o-otel when the table was introduced: dropping one from the table must fail this test. */
// prettier-ignore
const FLAGS = [
  '--socket', '--replay', '--pid', '--binary', '--record', '--sample-ratio', '--sni', '--address',
  '--no-application-data', '--no-reconnect', '--h2o-status', '--quic-events', '--qlog-dir', '--qlog-max-mb',
  '--max-span-events', '--ring-size', '--usdt-count-only', '--poll-ms', '--bpf-object', '--exporter', '--endpoint',
  '--protocol', '--otlp-header', '--service-name', '--no-metrics', '--capture-request-headers',
  '--capture-response-headers', '--sanitize-headers', '--redact-query-params', '--max-header-length',
  '--max-queue-size', '--batch-size', '--concurrent-exports', '--http1-quiet-ms', '--http2-idle-ms',
  '--max-connections', '--max-line-bytes', '--status-interval', '--quiet', '--help',
];

// prettier-ignore
const VARIABLES = [
  'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'OTEL_EXPORTER_OTLP_TIMEOUT',
  'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT', 'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_METRICS_COMPRESSION', 'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_METRICS_EXPORTER',
  'OTEL_METRIC_EXPORT_INTERVAL', 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS',
  'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS', 'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'OTEL_BSP_SCHEDULE_DELAY', 'OTEL_BSP_EXPORT_TIMEOUT',
];

/** The option lines of --help (before the environment section), one string per option. */
function optionTerms(help: string): string[] {
  const options = help.slice(help.indexOf('Options:'), help.indexOf('Environment'));
  return [...options.matchAll(/^ {2}((?:-\w, )?--[\w-]+)/gm)].map((m) => m[1]!);
}

test('--help lists every flag of the option table, and the flags h2o-otel has had', () => {
  const terms = optionTerms(helpText()).map(longName);
  const fromTable = Object.values(OPTION_TABLE).flatMap((spec) =>
    spec.flag === undefined ? [] : [longName(spec.flag)],
  );
  assert.deepEqual(terms, [...fromTable, '--version', '--help']);
  for (const flag of FLAGS) assert.ok(terms.includes(flag), `--help lacks ${flag}`);
});

test('the environment section lists every variable of the option table, and those h2o-otel has read', () => {
  const help = helpText();
  const environment = help.slice(help.indexOf('Environment (flags win over variables):'));
  const fromTable = Object.values(OPTION_TABLE).flatMap((spec) => spec.env ?? []);
  for (const name of [...fromTable, ...VARIABLES])
    assert.match(environment, new RegExp(`\\b${name}\\b`), `the environment help lacks ${name}`);
});

test('every default in the table is shown next to its flag', () => {
  const help = helpText();
  assert.match(
    help,
    /--max-queue-size <n>\s+spans queued before new ones are dropped\s+\(and counted\) \(default:\s+65536\)/,
  );
  assert.match(
    help,
    /--bpf-object <path>\s+USDT: the compiled BPF program to load\s+\(--bpf usdt\) \(default: h2o-otel's\s+native\/h2o_usdt\.bpf\.o\)/,
  );
  assert.match(help, /OTEL_BSP_SCHEDULE_DELAY\s+ms before a partial batch is sent \(default 1000\)/);
});

test('--version prints the version of package.json, which the spans carry as their scope version', async () => {
  const { readFileSync } = await import('node:fs');
  const { INSTRUMENTATION_SCOPE } = await import('../../src/otel/scope.js');
  const { repoRoot, runCli } = await import('../../harness/cli.js');
  const version = (JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string })
    .version;
  const r = await runCli(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), version);
  assert.equal(INSTRUMENTATION_SCOPE.version, version);
});
