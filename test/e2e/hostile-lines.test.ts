// Hostile lines among good ones: the good spans come out byte-identical with and without them, and each hostile line
// is counted under the reason it was turned away for.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { DEFAULT_SANITIZED_HEADERS } from '../../src/otel/header-policy.js';
import type { DecodeStats } from '../../src/events/types.js';
import { fixture } from '../../harness/cli.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';
import { JsonLinesSession } from '../../src/sources/json-lines.js';
import { spanShapes } from '../../harness/span-shape.js';

const HEADERS = {
  request: ['*'],
  response: ['*'],
  sanitize: [...DEFAULT_SANITIZED_HEADERS],
  maxValueLength: 4096,
};

interface Shape {
  readonly name: string;
  /** Capture the line goes into, and after how many of its lines (0: first). */
  readonly capture: 'http1.jsonl' | 'http2.jsonl';
  readonly after: number;
  /** The hostile line, or lines in a row. */
  readonly line: string | Buffer | readonly string[];
  /** The counter each line must land in. */
  readonly counted: keyof DecodeStats;
  /** The lines are still events (of the unknown connection they name), with the stream's time. */
  readonly kept?: true;
}

// http2.jsonl: after line 18 the GET on conn 17 awaits its response. http1.jsonl: conn 15 on socket SOCK1 has
// request 1 open; after line 9 its response has started.
const T2 = 1795333624045;
const T1 = 1795333619512;
const SOCK1 = 94490340313184;
const h2 = (rest: string): string => `{"module":"h2o","type":"h1_close","tid":12605${rest},"conn_id":999}`;
const accept = (conn: string): string =>
  `{"module":"h2o","type":"h1_accept","tid":12605,"time":${T1},"conn_id":${conn},"sock":${SOCK1}}`;
const response = (status: string): string =>
  `{"module":"h2o","type":"send_response","tid":12605,"time":${T1},"conn_id":15,"req_id":1,"status":${status}}`;
const request = (fields: string): string =>
  `{"module":"h2o","type":"receive_request","tid":12605,"time":${T1},${fields}}`;
const writev = (ret: string): string =>
  `{"module":"h2o","type":"writev","tid":12605,"time":${T1},"sock":${SOCK1},"ret":${ret}}`;

const SHAPES: Shape[] = [
  // 7: times
  {
    name: 'no time (the issue repro)',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(''),
    counted: 'untimed',
    kept: true,
  },
  {
    name: 'far-future time',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(',"time":99999999999999'),
    counted: 'farTimes',
  },
  {
    name: 'two identical far-future lines in a row',
    capture: 'http2.jsonl',
    after: 18,
    line: [h2(',"time":99999999999999'), h2(',"time":99999999999999')],
    counted: 'farTimes',
  },
  {
    name: 'no time on the first line of a replay',
    capture: 'http2.jsonl',
    after: 0,
    line: h2(''),
    counted: 'untimed',
    kept: true,
  },
  {
    name: 'far-future first line opening a connection',
    capture: 'http2.jsonl',
    after: 0,
    line: `{"module":"h2o","type":"h1_accept","tid":12605,"time":99999999999999,"conn_id":999,"sock":1}`,
    counted: 'farTimes',
  },
  {
    name: 'time an hour ahead',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(`,"time":${T2 + 3_600_000}`),
    counted: 'farTimes',
  },
  {
    name: 'far-past time',
    capture: 'http1.jsonl',
    after: 8,
    line: accept('999').replace(`${T1}`, '1000'),
    counted: 'farTimes',
  },
  {
    name: 'negative time',
    capture: 'http1.jsonl',
    after: 8,
    line: accept('999').replace(`${T1}`, '-1'),
    counted: 'badTimes',
  },
  {
    name: 'time as a string',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(`,"time":"${T2}"`),
    counted: 'badTimes',
  },
  { name: 'time null', capture: 'http2.jsonl', after: 18, line: h2(',"time":null'), counted: 'badTimes' },
  {
    name: 'time 1e999 (Infinity)',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(',"time":1e999'),
    counted: 'badTimes',
  },
  {
    name: 'time above 2^64',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(',"time":99999999999999999999'),
    counted: 'badTimes',
  },
  {
    name: 'time a NUL',
    capture: 'http2.jsonl',
    after: 18,
    line: h2(',"time":"\\u0000"'),
    counted: 'badTimes',
  },
  {
    name: 'time invalid UTF-8',
    capture: 'http2.jsonl',
    after: 18,
    line: Buffer.concat([
      Buffer.from('{"module":"h2o","type":"h1_close","tid":12605,"time":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('","conn_id":999}'),
    ]),
    counted: 'badTimes',
  },
  // 8: ids, status, version, and other fields the correlator reads
  {
    name: 'h1_accept conn_id 5.5 on a live socket',
    capture: 'http1.jsonl',
    after: 8,
    line: accept('5.5'),
    counted: 'badIds',
  },
  { name: 'h1_accept conn_id -5', capture: 'http1.jsonl', after: 8, line: accept('-5'), counted: 'badIds' },
  {
    name: 'h1_accept conn_id 1e308',
    capture: 'http1.jsonl',
    after: 8,
    line: accept('1e308'),
    counted: 'badIds',
  },
  {
    name: 'h1_accept conn_id above 2^53',
    capture: 'http1.jsonl',
    after: 8,
    line: accept('99999999999999999999'),
    counted: 'badIds',
  },
  {
    name: 'duplicate conn_id key',
    capture: 'http1.jsonl',
    after: 8,
    line: accept('999,"conn_id":-5'),
    counted: 'badIds',
  },
  {
    name: 'status as a string',
    capture: 'http1.jsonl',
    after: 9,
    line: response('"200"'),
    counted: 'badStatuses',
  },
  { name: 'status null', capture: 'http1.jsonl', after: 9, line: response('null'), counted: 'badStatuses' },
  { name: 'status 1e300', capture: 'http1.jsonl', after: 9, line: response('1e300'), counted: 'badStatuses' },
  { name: 'status 99', capture: 'http1.jsonl', after: 9, line: response('99'), counted: 'badStatuses' },
  { name: 'status 200.5', capture: 'http1.jsonl', after: 9, line: response('200.5'), counted: 'badStatuses' },
  {
    name: 'http_version as a string',
    capture: 'http1.jsonl',
    after: 8,
    line: request('"conn_id":999,"req_id":1,"http_version":"257"'),
    counted: 'badVersions',
  },
  {
    name: 'req_id -1 on a live connection',
    capture: 'http1.jsonl',
    after: 9,
    line: request('"conn_id":15,"req_id":-1,"http_version":257'),
    counted: 'badIds',
  },
  {
    name: 'req_id above 2^53 on a live connection',
    capture: 'http1.jsonl',
    after: 9,
    line: request('"conn_id":15,"req_id":99999999999999999999,"http_version":257'),
    counted: 'badIds',
  },
  {
    name: 'writev ret as a string',
    capture: 'http1.jsonl',
    after: 9,
    line: writev('"1000000"'),
    counted: 'badFields',
  },
  { name: 'writev ret 1e300', capture: 'http1.jsonl', after: 9, line: writev('1e300'), counted: 'badFields' },
  // 9: nesting
  {
    name: 'status an object',
    capture: 'http1.jsonl',
    after: 9,
    line: response('{"code":200}'),
    counted: 'badStatuses',
  },
  {
    name: 'status an array',
    capture: 'http1.jsonl',
    after: 9,
    line: response('[200]'),
    counted: 'badStatuses',
  },
  {
    name: 'status 100,000 arrays deep',
    capture: 'http1.jsonl',
    after: 9,
    line: response('['.repeat(100_000) + ']'.repeat(100_000)),
    counted: 'tooDeep',
  },
];

async function linesOf(capture: string): Promise<Buffer[]> {
  const text = await readFile(fixture(capture));
  const lines: Buffer[] = [];
  for (let s = 0; s < text.length;) {
    const nl = text.indexOf(0x0a, s);
    lines.push(text.subarray(s, nl + 1));
    s = nl + 1;
  }
  return lines;
}

async function run(input: Buffer): Promise<{ shapes: unknown; stats: DecodeStats }> {
  const t = testPipeline(HEADERS);
  const spans = await replayInto(t, input);
  return { shapes: JSON.parse(JSON.stringify(spanShapes(spans))), stats: t.pipeline.stats.decode };
}

for (const shape of SHAPES) {
  test(`hostile line: ${shape.name}`, async () => {
    const lines = await linesOf(shape.capture);
    const good = await run(Buffer.concat(lines));
    const added = typeof shape.line === 'string' || Buffer.isBuffer(shape.line) ? [shape.line] : shape.line;
    const hostile = Buffer.concat([
      ...lines.slice(0, shape.after),
      ...added.map((l) => Buffer.concat([typeof l === 'string' ? Buffer.from(l) : l, Buffer.from('\n')])),
      ...lines.slice(shape.after),
    ]);
    const got = await run(hostile);
    assert.deepEqual(got.shapes, good.shapes);
    const counts = got.stats as unknown as Record<string, number>;
    assert.equal(counts[shape.counted], added.length, `counted as ${shape.counted}`);
    assert.equal(got.stats.events, good.stats.events + (shape.kept ? added.length : 0));
  });
}

// Three lines in a row that agree on a time far ahead are what a replay's idle gap looks like (H2O's idle timeouts
// close several connections at once): they move the clock, and the requests open then end as `timeout`. The lines
// after them are an hour back, a clock step, followed once three agree; none is dropped.
test('three far-ahead lines of different connections in a row move the clock; nothing after them is lost', async () => {
  const lines = await linesOf('http2.jsonl');
  const ahead = [997, 998, 999].map(
    (id) => `{"module":"h2o","type":"h1_close","tid":12605,"time":${T2 + 3_600_000},"conn_id":${id}}\n`,
  );
  const good = await run(Buffer.concat(lines));
  const got = await run(
    Buffer.concat([...lines.slice(0, 18), ...ahead.map((l) => Buffer.from(l)), ...lines.slice(18)]),
  );
  assert.equal(got.stats.farTimes, 0);
  assert.equal(got.stats.events, good.stats.events + 3);
  const statuses = (shapes: unknown): unknown[] =>
    (shapes as { attributes: Record<string, unknown> }[]).map((s) => s.attributes['h2o.incomplete']);
  assert.ok(!statuses(good.shapes).includes('timeout'));
  assert.ok(statuses(got.shapes).includes('timeout'), 'the GET open at the gap ends as a timeout');
});

// A stream without `time` (an older h2olog): each line gets the wall clock of its read, never the first line's.
test("a whole stream without time: spans as with times, of the wall clock's lengths", async (t) => {
  const lines = await linesOf('http1.jsonl');
  const good = await run(Buffer.concat(lines));
  let wall = T1;
  t.mock.method(Date, 'now', () => wall);
  const p = testPipeline(HEADERS);
  const session = new JsonLinesSession(p.pipeline);
  lines.forEach((line, i) => {
    wall = T1 + i * 10;
    session.push(Buffer.from(line.toString('latin1').replace(/"time":\d+,/, ''), 'latin1'));
  });
  session.end();
  await p.pipeline.processor.forceFlush();
  t.mock.restoreAll();
  const stats = p.pipeline.stats.decode;
  assert.equal(stats.events, good.stats.events);
  assert.equal(stats.untimed + stats.farTimes, 0);
  const spans = p.exporter.getFinishedSpans();
  const names = (shapes: unknown): unknown[] => (shapes as { name: string }[]).map((s) => s.name).sort();
  assert.deepEqual(names(JSON.parse(JSON.stringify(spanShapes(spans)))), names(good.shapes));
  for (const s of spans) {
    const ms = (s.endTime[0] - s.startTime[0]) * 1e3 + (s.endTime[1] - s.startTime[1]) / 1e6;
    assert.ok(ms >= 10, `${s.name} lasts ${ms} ms`);
  }
});
