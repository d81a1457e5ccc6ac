// Broken, binary, truncated and oversized lines: the good lines still give correct spans, the bad are counted.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fixture, runCli } from '../../harness/cli.js';
import { startOtlpReceiver } from '../../harness/otlp-receiver.js';

test('bad lines are counted, never fatal, and good lines around them still correlate', async () => {
  const good = (await readFile(fixture('http1.jsonl'), 'utf8')).split('\n').filter((l) => l.length > 0);
  const bad = [
    '{"module":"h2o","type":"receive_request","tid":1,"time":17953336', // truncated by a partial write
    'not json at all',
    '{"module":"h2o","type":', // cut mid-key
    '[1,2,3]', // valid JSON, not an event
    '{"no_type":true}',
  ];
  const binary = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x0a]);
  const huge = '{"module":"h2o","type":"x","pad":"' + 'a'.repeat(200_000) + '"}';
  const glued = good[0]!.slice(0, 40) + good[1]!; // partial line glued onto the next event
  // Types and names that are Object.prototype members: events of unknown points, never a crash.
  const prototypeNames = [
    '{"module":"h2o","type":"toString","tid":1,"time":1795333619513,"conn_id":15}',
    '{"module":"h2o","type":"__proto__","tid":1,"time":1795333619513,"conn_id":15}',
    '{"type":"constructor","tid":1,"seq":9,"conn-id":15,"name":"x","time":1795333619513}',
  ];
  const input = Buffer.concat([
    Buffer.from(bad.slice(0, 2).join('\n') + '\n'),
    Buffer.from(good.slice(0, 8).join('\n') + '\n'),
    binary,
    Buffer.from(huge + '\n' + bad.slice(2).join('\n') + '\n' + glued + '\n'),
    Buffer.from(good.slice(8).join('\n') + '\n'),
    Buffer.from(prototypeNames.join('\n') + '\n'),
  ]);
  const receiver = await startOtlpReceiver();
  try {
    const res = await runCli(
      [
        '--replay',
        '-',
        '--endpoint',
        receiver.httpUrl,
        '--max-line-bytes',
        '65536',
        '--status-interval',
        '0',
      ],
      {},
      input,
    );
    assert.equal(res.code, 0, res.stderr);
    const spans = await receiver.waitForSpans(2);
    const req = spans.find((s) => s.kind === 2)!;
    assert.equal(req.attributes['url.path'], '/index.html');
    assert.equal(req.attributes['http.response.status_code'], 200);
    assert.equal(req.attributes['http.request.method'], 'GET');
    // truncated, not JSON, cut mid-key, a JSON array, the binary line, the glued line
    assert.match(res.stderr, /malformed 6/, res.stderr);
    assert.match(res.stderr, /too long 1/);
    assert.match(res.stderr, /not events 1/);
    assert.match(res.stderr, /non-UTF-8 1/);
    assert.match(res.stderr, /request spans 1, connection spans 1/);
  } finally {
    await receiver.close();
  }
});

test('by default a line over 1 MiB is too long (H2O writes none), and rejected lines show in the summary', async () => {
  const huge = '{"module":"h2o","type":"x","tid":1,"time":1795333619513,"pad":"' + 'a'.repeat(2 << 20) + '"}';
  const hostile = '{"module":"h2o","type":"h1_accept","tid":1,"time":1795333619513,"conn_id":-5}';
  const input = Buffer.from(
    `${huge}\n${(await readFile(fixture('http1.jsonl'), 'utf8')).trim()}\n${hostile}\n`,
  );
  const res = await runCli(['--replay', '-', '--exporter', 'none', '--status-interval', '0'], {}, input);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /too long 1/, res.stderr);
  assert.match(res.stderr, /bad ids 1/);
  assert.match(res.stderr, /request spans 1, connection spans 1/);
});

test('requests evicted by the per-connection cap are counted in the summary', async () => {
  const lines = Array.from(
    { length: 1001 },
    (_, i) =>
      `{"module":"h2o","type":"receive_request","tid":1,"time":1795333619513,"conn_id":7,"req_id":${2 * i + 1},"http_version":512}`,
  );
  const res = await runCli(
    ['--replay', '-', '--exporter', 'none', '--status-interval', '0'],
    {},
    Buffer.from(lines.join('\n') + '\n'),
  );
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /evicted requests 1,/, res.stderr);
});

test('a missing replay file is a clear error', async () => {
  const res = await runCli(['--replay', '/nonexistent/capture.jsonl']);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /--replay \/nonexistent\/capture\.jsonl: no such file/);
});

test('no source is a usage error that says what to do', async () => {
  const res = await runCli([]);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /--socket PATH .* or --replay FILE/);
});

test('--help documents every flag and the environment variables', async () => {
  const res = await runCli(['--help']);
  assert.equal(res.code, 0);
  for (const flag of [
    '--socket',
    '--replay',
    '--record',
    '--sample-ratio',
    '--sni',
    '--address',
    '--endpoint',
    '--protocol',
    '--capture-request-headers',
    '--sanitize-headers',
    '--status-interval',
  ]) {
    assert.ok(res.stdout.includes(flag), `--help lacks ${flag}`);
  }
  for (const env of [
    'OTEL_EXPORTER_OTLP_ENDPOINT',
    'OTEL_EXPORTER_OTLP_PROTOCOL',
    'OTEL_EXPORTER_OTLP_HEADERS',
    'OTEL_SERVICE_NAME',
    'OTEL_RESOURCE_ATTRIBUTES',
    'OTEL_TRACES_SAMPLER',
    'OTEL_BSP_MAX_QUEUE_SIZE',
    'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS',
  ]) {
    assert.ok(res.stdout.includes(env), `--help lacks ${env}`);
  }
});
