// What stderr says about the collector: an outage once, when it is still on at a check, and its end with what it
// cost; a short one (a flapping backend) only in the counts; a refusal once per distinct error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatusReporter } from '../../src/cli/status.js';
import { testPipeline } from '../../harness/pipeline.js';

function reporter() {
  const { pipeline } = testPipeline({ request: [], response: [], sanitize: [], maxValueLength: 4096 });
  const said: string[] = [];
  const status = new StatusReporter(
    {
      ...pipeline.stats,
      usdt: () => undefined,
      h2oStatus: () => undefined,
      socket: () => undefined,
      openConnections: () => 0,
      openRequests: () => 0,
      queueLength: () => 0,
    },
    (line) => said.push(line),
  );
  return { e: pipeline.stats.export, status, said };
}

void test('an outage is said once while it lasts, and its end with the spans delayed and dropped', () => {
  const { e, status, said } = reporter();
  e.outages = 1;
  e.outageSince = Date.now() - 3_000;
  e.lastError = '14 UNAVAILABLE: No connection established';
  status.notices();
  status.notices();
  assert.equal(said.length, 1);
  assert.match(said[0]!, /export failed: 14 UNAVAILABLE.*Is the collector running/);
  assert.match(status.line(), /export paused 3 s: collector unreachable/);
  e.outageSince = undefined;
  e.lastOutage = { durationMs: 12_345, delayed: 4096, dropped: 7 };
  status.notices();
  status.notices();
  assert.deepEqual(said.slice(1), ['h2o-otel: export recovered after 12.3 s: 4096 spans delayed, 7 dropped']);
  assert.doesNotMatch(status.line(), /export paused/);
  assert.match(status.summary(), /export outages 1/);
});

void test('an outage over before any check is only counted, so a flapping backend does not fill stderr', () => {
  const { e, status, said } = reporter();
  for (let i = 1; i <= 5; i++) {
    e.outages = i;
    e.lastOutage = { durationMs: 40, delayed: 512, dropped: 0 };
    status.notices();
  }
  assert.deepEqual(said, []);
  assert.match(status.summary(), /export outages 5/);
});

void test('a refusal for good is said once per distinct error', () => {
  const { e, status, said } = reporter();
  e.failed = 100;
  e.lastRejection = 'Unauthorized';
  status.notices();
  e.failed = 200;
  status.notices();
  e.lastRejection = 'Bad Request';
  status.notices();
  assert.equal(said.length, 2);
  assert.match(said[0]!, /refused spans \(100 so far; not retried\): Unauthorized/);
  assert.match(said[1]!, /\(200 so far; not retried\): Bad Request/);
});
