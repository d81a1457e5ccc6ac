// Header lines no span uses are counted and not parsed: the spans must be exactly those of a full parse, and a
// line that only looks like such a header (cut, glued, escaped name) must still be parsed and judged.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AlwaysOnSampler, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { defaultResource } from '@opentelemetry/resources';
import { DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import { JsonLineDecoder } from '../src/events/decode-json.js';
import { EventRecorder } from '../src/events/recorder.js';
import { newDecodeStats } from '../src/events/types.js';
import type { DecodeStats, ProbeEvent } from '../src/events/types.js';
import { CountingBatchProcessor, DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import { SpanFactory } from '../src/otel/finished-span.js';
import { headerPolicy } from '../src/otel/header-policy.js';
import { SpanMapper } from '../src/otel/span-mapper.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../src/otel/url.js';
import { Pipeline } from '../src/pipeline.js';
import { repoRoot } from './helpers/cli.js';

const header = (type: string, name: string, value: string, tail = '}'): string =>
  `{"module":"h2o","type":"${type}","tid":1,"time":5,"conn_id":1,"req_id":1,"name":"${name}",` +
  `"name_len":${name.length},"value":"${value}","value_len":${value.length}${tail}`;

const WANTED = new Set([':path', 'content-type']);

function decode(text: string, chunk = 1 << 20): { events: ProbeEvent[]; stats: DecodeStats } {
  const stats = newDecodeStats();
  const d = new JsonLineDecoder({ maxLineBytes: 1 << 20, usesHeader: (name) => WANTED.has(name) }, stats);
  const events: ProbeEvent[] = [];
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i += chunk) d.push(buf.subarray(i, i + chunk), events);
  d.end(events);
  return { events, stats };
}

test('header lines of unused names are counted as events, not parsed, whatever the chunking', () => {
  const input =
    [
      header('receive_request_header', ':path', '\\/a'),
      header('receive_request_header', 'accept', '*\\/*'),
      header('receive_request_header', 'cookie', 'secret=1'),
      header('send_response_header', 'content-type', 'text\\/html'),
      header('send_response_header', 'etag', '\\"x\\"'),
      '{"module":"h2o","type":"send_response","tid":1,"time":5,"conn_id":1,"req_id":1,"status":200}',
    ].join('\n') + '\n';
  for (const chunk of [1, 7, 64, 1 << 20]) {
    const { events, stats } = decode(input, chunk);
    assert.deepEqual(
      events.map((e) => [e.type, e.fields.name ?? e.fields.status]),
      [
        ['receive_request_header', ':path'],
        ['send_response_header', 'content-type'],
        ['send_response', 200],
      ],
      `chunk ${chunk}`,
    );
    assert.equal(stats.unusedHeaders, 3);
    assert.equal(stats.events, 6);
    assert.equal(stats.lines, 6);
    assert.equal(stats.malformed, 0);
  }
});

test('a cut or glued line is never skipped as a header: it is parsed and counted as malformed', () => {
  const cut = header('receive_request_header', 'accept', 'text').slice(0, -20);
  const glued =
    header('receive_request_header', 'accept', 'te', '') +
    '{"module":"h2o","type":"send_response","tid":1,"time":5,"conn_id":1,"req_id":1,"status":200}';
  const { events, stats } = decode(`${cut}\n${glued}\n`);
  assert.equal(events.length, 0);
  assert.equal(stats.malformed, 2);
  assert.equal(stats.unusedHeaders, 0);
});

test('a name with an escape, a line without a name, and the old format are parsed as before', () => {
  const { events, stats } = decode(
    [
      header('receive_request_header', 'x-\\u0061', 'v'),
      '{"module":"h2o","type":"receive_request_header","tid":1,"time":5,"conn_id":1,"req_id":1,"name_len":6,"value_len":3}',
      '{"type":"receive-request-header","tid":1,"seq":3,"conn-id":1,"req-id":1,"name":"accept","value":"x","time":5}',
    ].join('\n') + '\n',
  );
  assert.deepEqual(
    events.map((e) => e.fields.name ?? null),
    ['x-a', null, 'accept'],
  );
  assert.equal(stats.unusedHeaders, 0);
});

// Every capture in the repository, decoded with and without the skip: the same spans.
const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-unused-'));
after(() => rm(dir, { recursive: true, force: true }));

async function spansOf(file: string, record: boolean): Promise<{ spans: string[]; skipped: number }> {
  const exporter = new InMemorySpanExporter();
  const processor = new CountingBatchProcessor(exporter, DEFAULT_BATCH_OPTIONS);
  const mapper = new SpanMapper(
    new SpanFactory(processor, {
      sampler: new AlwaysOnSampler(),
      resource: defaultResource(),
      scope: { name: 't' },
    }),
    {
      headers: headerPolicy({
        request: ['x-request-id'],
        response: ['content-type'],
        sanitize: [],
        maxValueLength: 64,
      }),
      sensitiveQueryParams: new Set(DEFAULT_SENSITIVE_QUERY_PARAMS),
    },
  );
  // `--record` keeps every event, so it also turns the skip off: the reference run.
  const recorder = record ? new EventRecorder(join(dir, 'rec.jsonl')) : undefined;
  const pipeline = new Pipeline(
    { correlator: DEFAULT_CORRELATOR_OPTIONS, maxLineBytes: 1 << 20, qlog: undefined },
    mapper,
    recorder,
  );
  const session = pipeline.newSession();
  session.push(await readFile(file));
  session.end();
  await processor.forceFlush();
  await recorder?.close();
  const shape = (s: ReadableSpan): string =>
    JSON.stringify([
      s.name,
      s.kind,
      s.startTime,
      s.endTime,
      s.status,
      s.attributes,
      s.events.map((e) => [e.name, e.time, e.attributes]),
      s.links.length,
    ]);
  return {
    spans: exporter.getFinishedSpans().map(shape).sort(),
    skipped: pipeline.decodeStats.unusedHeaders,
  };
}

test('every capture gives the same spans with unused header lines skipped as with all of them parsed', async () => {
  const base = join(repoRoot, 'test', 'fixtures', 'h2olog');
  const files = [
    ...(await readdir(base)).filter((f) => f.endsWith('.jsonl')).map((f) => join(base, f)),
    ...(await readdir(join(base, 'lab'))).map((f) => join(base, 'lab', f)),
  ];
  assert.ok(files.length >= 17);
  let skipped = 0;
  for (const file of files) {
    const full = await spansOf(file, true);
    const lazy = await spansOf(file, false);
    assert.equal(full.skipped, 0);
    assert.deepEqual(lazy.spans, full.spans, file);
    skipped += lazy.skipped;
  }
  assert.ok(skipped > 50, `only ${skipped} header lines skipped`);
});
