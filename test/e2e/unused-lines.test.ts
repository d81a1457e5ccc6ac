// Lines no span uses (headers of other names, QUIC streams without requests, TLS secrets other than early data's)
// are counted and not parsed: the spans must be exactly those of a full parse, and a line that only looks like such
// a line (cut, glued, escaped, an odd number) must still be parsed and judged.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CORRELATOR_FIELD_USES } from '../../src/correlate/correlator.js';
import { JsonLineDecoder } from '../../src/events/decode-json.js';
import { EventRecorder } from '../../src/events/recorder.js';
import { newDecodeStats } from '../../src/events/types.js';
import type { DecodeStats, ProbeEvent } from '../../src/events/types.js';
import { repoRoot } from '../../harness/cli.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';
import { spanShapes } from '../../harness/span-shape.js';

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

const quic = (type: string, tail: string): string =>
  `{"module":"quicly","type":"${type}","tid":1,"time":5,"conn":9,"conn_id":1,${tail}}`;
const secret = (label: string): string =>
  `{"module":"picotls","type":"new_secret","tid":1,"time":5,"tls":7,"conn_id":1,"label":"${label}"}`;

function decodeQuic(lines: string[]): { events: ProbeEvent[]; stats: DecodeStats } {
  const stats = newDecodeStats();
  const d = new JsonLineDecoder({ maxLineBytes: 1 << 20, fieldUses: CORRELATOR_FIELD_USES }, stats);
  const events: ProbeEvent[] = [];
  d.push(Buffer.from(lines.join('\n') + '\n'), events);
  return { events, stats };
}

test('stream events without a request and TLS secrets other than early data are counted, not parsed', () => {
  const { events, stats } = decodeQuic([
    quic('stream_on_open', '"stream_id":0'),
    quic('stream_on_open', '"stream_id":2'),
    quic('stream_on_open', '"stream_id":3'),
    quic('stream_on_destroy', '"stream_id":-1,"err":0'),
    quic('stream_on_destroy', '"stream_id":4,"err":0'),
    quic('stream_on_receive_reset', '"stream_id":7,"err":268'),
    quic('stream_on_send_stop', '"stream_id":8,"err":268'),
    secret('SERVER_HANDSHAKE_TRAFFIC_SECRET'),
    secret('CLIENT_EARLY_TRAFFIC_SECRET'),
    quic('packet_lost', '"pn":4,"stream_id":2'),
  ]);
  assert.deepEqual(
    events.map((e) => `${e.type} ${e.fields.stream_id ?? e.fields.label ?? ''}`),
    [
      'stream_on_open 0',
      'stream_on_destroy 4',
      'stream_on_send_stop 8',
      'new_secret CLIENT_EARLY_TRAFFIC_SECRET',
      'packet_lost 2',
    ],
  );
  assert.equal(stats.unusedEvents, 5);
  assert.equal(stats.unusedHeaders, 0);
  assert.equal(stats.events, 10);
  assert.equal(stats.lines, 10);
});

test('a field the line check cannot judge in place leaves the line to the parse', () => {
  const { events, stats } = decodeQuic([
    // an escape, a number too long to be exact, a float (not a stream id: dropped), no such field, a cut line,
    // two glued lines
    secret('SERVER\\u005fHANDSHAKE_TRAFFIC_SECRET'),
    quic('stream_on_open', '"stream_id":2222222222222222'),
    quic('stream_on_open', '"stream_id":2.5'),
    quic('stream_on_open', '"id":2'),
    quic('stream_on_open', '"stream_id":2').slice(0, -1),
    quic('stream_on_open', '"stream_id":2') + quic('stream_on_open', '"stream_id":2'),
  ]);
  assert.deepEqual(
    events.map((e) => e.fields.stream_id ?? e.fields.label ?? null),
    ['SERVER_HANDSHAKE_TRAFFIC_SECRET', 2222222222222222, null],
  );
  assert.equal(stats.unusedEvents, 0);
  assert.equal(stats.badIds, 1);
  assert.equal(stats.malformed, 2);
});

test('conn_stats is read in place for the fields spans show, and parsed whenever that read could differ', () => {
  const subset = [{ module: 'quicly', type: 'conn_stats', fields: ['rtt.smoothed', 'cc.cwnd', 'num-ptos'] }];
  const stats = newDecodeStats();
  const d = new JsonLineDecoder({ maxLineBytes: 1 << 20, fieldSubsets: subset }, stats);
  const line = (tail: string, head = '"tid":3,"time":7'): string =>
    `{"module":"quicly","type":"conn_stats",${head},"conn":9,"conn_id":4,${tail}}`;
  const events: ProbeEvent[] = [];
  d.push(
    Buffer.from(
      [
        line('"num-packets.sent":5,"rtt.smoothed":12,"cc.cwnd":14720,"num-ptos":0'),
        // out of H2O's order, one missing, the sub-ms time `--record` writes
        line('"cc.cwnd":-3,"rtt.smoothed":1', '"tid":3,"time":7,"time_sub_ns":250'),
        // parsed: a read field beyond 2^53, a float, the 2024 format without tid, a cut line
        line('"rtt.smoothed":9223372036854775807,"cc.cwnd":1,"num-ptos":0'),
        line('"rtt.smoothed":1.5,"cc.cwnd":1,"num-ptos":0'),
        line('"rtt.smoothed":1,"cc.cwnd":1,"num-ptos":0', '"time":7'),
        line('"rtt.smoothed":1,"cc.cwnd":1').slice(0, -3),
      ].join('\n') + '\n',
    ),
    events,
  );
  const inPlace = events.slice(0, 2);
  assert.deepEqual(
    inPlace.map((e) => [e.tid, e.timeMs, e.timeSubNs, e.fields]),
    [
      [3, 7, 0, { conn_id: 4, 'rtt.smoothed': 12, 'cc.cwnd': 14720, 'num-ptos': 0 }],
      [3, 7, 250, { conn_id: 4, 'cc.cwnd': -3, 'rtt.smoothed': 1 }],
    ],
  );
  // The parsed ones carry every field, the conn pointer among them.
  assert.deepEqual(
    events.slice(2).map((e) => [e.fields.conn, e.fields['rtt.smoothed']]),
    [
      [9, 9223372036854775807n],
      [9, 1.5],
      [9, 1],
    ],
  );
  assert.equal(stats.malformed, 1);
  assert.equal(stats.events, 5);
});

// Every capture in the repository, decoded with and without the skip: the same spans.
const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-unused-'));
after(() => rm(dir, { recursive: true, force: true }));

interface Run {
  spans: string[];
  skipped: number;
  skippedOther: number;
}

async function spansOf(file: string, record: boolean, input?: Buffer): Promise<Run> {
  // `--record` keeps every event, so it also turns the skip off: the reference run.
  const recorder = record ? new EventRecorder(join(dir, 'rec.jsonl'), true) : undefined;
  const t = testPipeline(
    { request: ['x-request-id'], response: ['content-type'], sanitize: [], maxValueLength: 64 },
    { recorder },
  );
  const spans = await replayInto(t, input ?? (await readFile(file)));
  await recorder?.close();
  return {
    spans: spanShapes(spans).map((s) => JSON.stringify(s)),
    skipped: t.pipeline.stats.decode.unusedHeaders,
    skippedOther: t.pipeline.stats.decode.unusedEvents,
  };
}

test('every capture gives the same spans with lines skipped or read in place as with all of them parsed', async () => {
  const base = join(repoRoot, 'test', 'fixtures', 'h2olog');
  const files = [
    ...(await readdir(base)).filter((f) => f.endsWith('.jsonl')).map((f) => join(base, f)),
    ...(await readdir(join(base, 'lab'))).map((f) => join(base, 'lab', f)),
  ];
  assert.ok(files.length >= 17);
  let skipped = 0;
  let skippedOther = 0;
  for (const file of files) {
    const full = await spansOf(file, true);
    const lazy = await spansOf(file, false);
    assert.equal(full.skipped + full.skippedOther, 0);
    assert.deepEqual(lazy.spans, full.spans, file);
    skipped += lazy.skipped;
    skippedOther += lazy.skippedOther;
  }
  assert.ok(skipped > 50, `only ${skipped} header lines skipped`);
  assert.ok(skippedOther > 20, `only ${skippedOther} stream and secret lines skipped`);
});

test('an early-data secret still reaches the span when the other secrets are skipped', async () => {
  const file = join(repoRoot, 'test', 'fixtures', 'h2olog', 'http3.jsonl');
  const text = await readFile(file, 'utf8');
  // Installed right after the server's handshake secret, as picotls does when it accepts 0-RTT.
  const server = /^.*"label":"SERVER_HANDSHAKE_TRAFFIC_SECRET"\}$/m.exec(text)![0];
  const early = server.replace('SERVER_HANDSHAKE_TRAFFIC_SECRET', 'CLIENT_EARLY_TRAFFIC_SECRET');
  const input = Buffer.from(text.replace(server, `${server}\n${early}`));
  const plain = await spansOf(file, false);
  const withEarly = await spansOf(file, false, input);
  assert.ok(withEarly.skippedOther > 0);
  assert.ok(!plain.spans.some((s) => s.includes('h2o.tls.early_data')));
  assert.equal(withEarly.spans.filter((s) => s.includes('"h2o.tls.early_data":true')).length, 1);
});
