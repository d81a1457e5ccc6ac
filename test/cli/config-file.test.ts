// --config FILE: YAML keyed as the flags; flag > env > file > default; every row of the table round-trips.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { stringify } from 'yaml';
import { configValues, readConfigFile } from '../../src/cli/config-file.js';
import { fileKey, isSwitch, readValues } from '../../src/cli/option-spec.js';
import type { Env, FileLayer, OptionSpec } from '../../src/cli/option-spec.js';
import { OPTION_TABLE } from '../../src/cli/option-table.js';
import { buildCommand, resolveOptions } from '../../src/cli/options.js';
import { fixture, runCli } from '../../harness/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-config-'));
let files = 0;

function writeConfig(text: string): string {
  const path = join(dir, `config-${files++}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** Commander prints its own errors; the tests read them from the thrown error instead. */
const quietCommand = () =>
  buildCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });

const parsed = (args: string[]) => quietCommand().parse(['node', 'h2o-otel', ...args]);

const layer = (yaml: string): FileLayer => configValues(yaml, 'config.yaml', OPTION_TABLE);

/** The table's values and given rows from flags, variables and (YAML text of) a file. */
function read(args: string[], env: Env = {}, yaml?: string) {
  const { values, given } = readValues(
    parsed(args),
    OPTION_TABLE,
    env,
    yaml === undefined ? undefined : layer(yaml),
  );
  return { values, given: [...given].sort() };
}

/** What a bad file must be refused with: an option error (exit 2) whose message matches. */
function refuses(yaml: string, message: RegExp): void {
  assert.throws(
    () => layer(yaml),
    (err: unknown) => err instanceof InvalidArgumentError && message.test(err.message),
    message.source,
  );
}

test('precedence: file over default, variable over file, flag over file, flag over variable over file', () => {
  const yaml = 'max-queue-size: 10\nbase-endpoint: http://file:4318\nsni: [file.example]\n';
  const file = read([], {}, yaml).values;
  assert.equal(read([]).values.maxQueueSize, 65536, 'the default without a file');
  assert.equal(file.maxQueueSize, 10);
  assert.equal(file.baseEndpoint, 'http://file:4318');
  assert.deepEqual(file.sni, ['file.example']);

  const env = { OTEL_BSP_MAX_QUEUE_SIZE: '20', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' };
  assert.equal(read([], env, yaml).values.maxQueueSize, 20);
  assert.equal(read([], env, yaml).values.baseEndpoint, 'http://env:4318');
  assert.equal(read(['--max-queue-size', '30'], {}, yaml).values.maxQueueSize, 30);
  assert.equal(read(['--max-queue-size', '30'], env, yaml).values.maxQueueSize, 30);
  // A repeatable flag replaces the file's list, as it replaces a default: layers do not merge.
  assert.deepEqual(read(['--sni', 'flag.example'], {}, yaml).values.sni, ['flag.example']);
  // A blank variable is unset: the file's value stands.
  assert.equal(read([], { OTEL_BSP_MAX_QUEUE_SIZE: ' ' }, yaml).values.maxQueueSize, 10);
});

test('a value from the file counts as given (an explicit --quic-events level survives --qlog-dir)', () => {
  const resolve = (args: string[], env: Env = {}) =>
    resolveOptions(quietCommand(), ['node', 'h2o-otel', '--replay', 'x.jsonl', ...args], env);
  const qlogOnly = writeConfig('qlog-dir: /tmp/q\n');
  const withLevel = writeConfig('qlog-dir: /tmp/q\nquic-events: basic\n');
  assert.equal(resolve(['--config', qlogOnly]).quicEvents, 'detailed');
  assert.equal(resolve(['--config', withLevel]).quicEvents, 'basic');
  assert.equal(
    resolve([], { H2O_OTEL_CONFIG: withLevel }).quicEvents,
    'basic',
    'the variable names a file too',
  );
  assert.deepEqual(resolve(['--config', withLevel]).qlog?.dir, '/tmp/q');
  // --config wins over H2O_OTEL_CONFIG, as any flag over its variable.
  assert.equal(resolve(['--config', qlogOnly], { H2O_OTEL_CONFIG: withLevel }).quicEvents, 'detailed');
});

test('unknown keys: every one is named, with the key meant when one is close', () => {
  refuses('foo: 1\n', /^config\.yaml: unknown key foo; keys are named as the flags/);
  refuses('sample-ratoi: 0.5\n', /unknown key sample-ratoi \(did you mean sample-ratio\?\)/);
  const several = 'exporterr: none\nsampleRatio: 1\nno-metrics: true\nmax-queue-size: 5\nzzz: 1\n';
  refuses(
    several,
    /unknown keys exporterr \(did you mean exporter\?\), sampleRatio \(did you mean sample-ratio\?\)/,
  );
  refuses(several, /no-metrics \(did you mean metrics: false\?\), zzz;/);
  refuses('--socket: /s\n', /unknown key --socket \(did you mean socket\?\)/);
  refuses('config: other.yaml\n', /^config\.yaml: config: a config file cannot name another one/);
});

test('a file that is not YAML, not a mapping, or unreadable is refused clearly; an empty one sets nothing', () => {
  refuses('a: [\n', /^config\.yaml: not valid YAML: .* at line 2, column 1$/);
  refuses('socket: /a\nsocket: /b\n', /^config\.yaml: not valid YAML: Map keys must be unique/);
  refuses('- socket\n', /^config\.yaml: must be a mapping of option keys to values, got a list/);
  refuses('just text\n', /^config\.yaml: must be a mapping of option keys to values, got "just text"/);
  assert.equal(layer('').values.size, 0);
  assert.equal(layer('# nothing set yet\n').values.size, 0);
  const missing = join(dir, 'missing.yaml');
  assert.throws(() => readConfigFile(missing, OPTION_TABLE), {
    message: `${missing}: cannot read the config file (ENOENT)`,
  });
  assert.throws(() => readConfigFile(dir, OPTION_TABLE), /cannot read the config file \(EISDIR\)/);
});

test('wrong types and bad values name the file and the key, with the message the flag would give', () => {
  refuses('sample-ratio: 2\n', /^config\.yaml: sample-ratio: must be a number between 0 and 1, got "2"$/);
  refuses('max-queue-size: ten\n', /^config\.yaml: max-queue-size: must be an integer >= 1, got "ten"$/);
  refuses('protocol: http\n', /^config\.yaml: protocol: must be grpc or http\/protobuf, got "http"$/);
  refuses('ring-size: 3\n', /^config\.yaml: ring-size: must be a power of two/);
  refuses('sample-ratio: [0.5]\n', /^config\.yaml: sample-ratio: must be a single value, got a list$/);
  refuses('socket: {a: 1}\n', /^config\.yaml: socket: must be a single value, got a mapping$/);
  refuses('socket: true\n', /^config\.yaml: socket: takes a value, not true \(quote it to mean the word\)/);
  refuses('socket:\n', /^config\.yaml: socket: must be a single value, got nothing \(remove the key/);
  refuses('force: "yes"\n', /^config\.yaml: force: must be true or false, got "yes"$/);
  refuses('metrics: none\n', /^config\.yaml: metrics: must be true or false, got "none"$/);
  refuses('sni: [[a]]\n', /^config\.yaml: sni: must be a single value, got a list$/);
  refuses(
    'otlp-header: {a: {b: 1}}\n',
    /^config\.yaml: otlp-header: a: must be a single value, got a mapping$/,
  );
  refuses('otlp-header: nokey\n', /^config\.yaml: otlp-header: must look like key=value, got "nokey"$/);
  refuses('resource-attributes: {a: [1]}\n', /^config\.yaml: resource-attributes: a: must be a single value/);
});

test('numbers reach the row as written, as a flag argument would', () => {
  const v = read([], {}, 'service-name: 1.0\nsampler-arg: 0.50\nmax-queue-size: 0x10\nsni: [010]\n').values;
  assert.deepEqual([v.serviceName, v.samplerArg, v.maxQueueSize, v.sni], ['1.0', '0.50', 16, ['010']]);
  assert.deepEqual(
    v,
    read(['--service-name', '1.0', '--max-queue-size', '0x10', '--sni', '010'], {
      OTEL_TRACES_SAMPLER_ARG: '0.50',
    }).values,
  );
});

test('lists take a sequence or one value; records a mapping, its values as written; name lists commas too', () => {
  const v = read([], {}, 'sni: a.example\naddress: [10.0.0.1, 10.0.0.2]\n').values;
  assert.deepEqual([v.sni, v.address], [['a.example'], ['10.0.0.1', '10.0.0.2']]);
  const headers = read([], {}, 'otlp-header: {Authorization: "Bearer a,b=c%41", x-n: 1}\n').values.otlpHeader;
  assert.deepEqual(headers, { authorization: 'Bearer a,b=c%41', 'x-n': '1' });
  const names = 'capture-request-headers: [User-Agent, x-id]\ncapture-response-headers: Server,Date\n';
  const n = read([], {}, names).values;
  assert.deepEqual(
    [n.captureRequestHeaders, n.captureResponseHeaders],
    [
      ['user-agent', 'x-id'],
      ['server', 'date'],
    ],
  );
  const attrs = read([], {}, 'resource-attributes: {team: web, k=1: "a,b"}\n').values.resourceAttributes;
  assert.deepEqual(attrs, { team: 'web', 'k=1': 'a,b' });
});

test('a setting in the file that conflicts with a flag, a variable or another setting is refused', () => {
  assert.throws(
    () => read(['--replay', 'x'], {}, 'socket: /s\n'),
    /config\.yaml: socket cannot be used with --replay/,
  );
  assert.throws(
    () => read([], {}, 'pid: 1\nbinary: /h2o\n'),
    /config\.yaml: pid cannot be used with config\.yaml: binary/,
  );
});

/** A few arguments, at least one of which each row's parser takes (and turns into something but its default). */
const CANDIDATES = ['0.5', '8', '2048', 'http://collector.example:4318/x', 'a=1,b=2'];

function validArgument(key: string, spec: OptionSpec<unknown>): string {
  if (spec.choices !== undefined) return spec.choices.find((c) => c !== spec.default)!;
  for (const raw of CANDIDATES) {
    try {
      if (!isDeepEqual(spec.parse(raw), spec.default)) return raw;
    } catch {
      // Not this row's kind of value: try the next.
    }
  }
  throw new Error(`no candidate argument suits row ${key}: add one to CANDIDATES`);
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

/** The same setting as flags (or variables, for a row without a flag) and as the file's value. */
function spellings(key: string, spec: OptionSpec<unknown>): Array<[string[], Env, unknown]> {
  const set = (raw: string): [string[], Env] =>
    spec.flag === undefined
      ? [[], { [spec.env![0]!]: raw }]
      : [[spec.flag.split(' ')[0]!.replace(/^-\w, /, ''), raw], {}];
  if (isSwitch(spec)) return [[[/--[\w-]+/.exec(spec.flag!)![0]], {}, !(spec.default as boolean)]];
  const raw = validArgument(key, spec);
  const [args, env] = set(raw);
  const out: Array<[string[], Env, unknown]> = [[args, env, raw]];
  if (Array.isArray(spec.default)) {
    // Two items: as two occurrences of a repeatable flag, else as the comma-separated argument.
    const twice: [string[], Env] =
      spec.combine === undefined ? set(`${raw},${raw}`) : [[...args, ...args], env];
    out.push([...twice, [raw, raw]]);
  }
  if (typeof spec.default === 'object' && !Array.isArray(spec.default))
    out.push([...set('a=1,b=2'), { a: '1', b: '2' }]);
  return out;
}

test('every row of the option table round-trips: the file gives what its flag or variable gives', () => {
  let checked = 0;
  for (const [key, spec] of Object.entries(OPTION_TABLE)) {
    if (key === 'config') continue;
    const name = fileKey(key, spec);
    for (const [args, env, fileValue] of spellings(key, spec)) {
      const yaml = stringify({ [name]: fileValue });
      const fromFile = read([], {}, yaml);
      assert.deepEqual(
        fromFile,
        read(args, env),
        `${name}: ${yaml} vs ${args.join(' ')} ${JSON.stringify(env)}`,
      );
      assert.deepEqual(fromFile.given, [key]);
      assert.notDeepEqual(
        (fromFile.values as Record<string, unknown>)[key],
        spec.default,
        `${name}: the round trip must not be the default`,
      );
      checked++;
    }
  }
  assert.ok(checked > Object.keys(OPTION_TABLE).length, 'every row, lists and records twice');
});

test('file keys are the flags without -- (and without no- for a negatable switch), else the row in kebab-case', () => {
  const keys = Object.fromEntries(Object.entries(OPTION_TABLE).map(([k, spec]) => [k, fileKey(k, spec)]));
  assert.equal(keys.sampleRatio, 'sample-ratio');
  assert.equal(keys.otlpHeader, 'otlp-header');
  assert.equal(keys.metrics, 'metrics');
  assert.equal(keys.reconnect, 'reconnect');
  assert.equal(keys.quiet, 'quiet');
  assert.equal(keys.http1QuietMs, 'http1-quiet-ms');
  assert.equal(keys.baseEndpoint, 'base-endpoint');
  assert.equal(keys.samplerName, 'sampler-name');
  assert.equal(new Set(Object.values(keys)).size, Object.keys(keys).length, 'no two rows share a key');
});

test('the CLI: a replay reads its settings from --config; a bad file exits 2 naming file and key', async () => {
  const capture = fixture('http1.jsonl');
  const noInherited = { H2O_OTEL_CONFIG: '' };
  const plain = await runCli(['--replay', capture, '--exporter', 'console'], noInherited);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stdout, /http\.request\.header\.user-agent/);
  assert.match(plain.stderr, /done: /);

  const config = writeConfig('capture-request-headers: [user-agent]\nquiet: true\n');
  const withFile = await runCli(
    ['--replay', capture, '--exporter', 'console', '--config', config],
    noInherited,
  );
  assert.equal(withFile.code, 0, withFile.stderr);
  assert.match(withFile.stdout, /http\.request\.header\.user-agent=\["curl\/7\.88\.1"\]/);
  assert.equal(withFile.stderr, '', 'quiet: true took effect');

  const bad = writeConfig('sample-ratio: 1.5\n');
  const refused = await runCli(['--replay', capture], { H2O_OTEL_CONFIG: bad });
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    new RegExp(`^h2o-otel: ${bad}: sample-ratio: must be a number between 0 and 1`),
  );
});

test('--help lists --config and says how the file is keyed and where it stands', () => {
  let out = '';
  const command = buildCommand()
    .exitOverride()
    .configureOutput({ writeOut: (s) => (out += s) });
  assert.throws(() => command.parse(['node', 'h2o-otel', '--help']));
  assert.match(out, /^ {2}--config <file> +read options from this YAML file/m);
  assert.match(out, /^ {2}H2O_OTEL_CONFIG +YAML file of options \(as --config\)/m);
  assert.match(out, /^Config file \(--config FILE or H2O_OTEL_CONFIG/m);
  assert.match(out, /Precedence: flag > variable > file > default\./);
});
