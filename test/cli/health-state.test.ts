// What /healthz and /readyz decide from plain facts: the heartbeat's age against its limit, the source's readiness,
// how long exports have failed against the threshold (0: never), and shutdown.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthState } from '../../src/cli/health-state.js';
import type { HealthFacts } from '../../src/cli/health-state.js';

const T0 = 1_000_000;

function facts(over: Partial<{ ready: boolean; failingSince: number; error: string }> = {}): HealthFacts {
  return {
    source: () => ({
      ready: over.ready ?? true,
      detail: over.ready === false ? 'socket /s not subscribed' : 'socket /s subscribed',
    }),
    exportFailingSince: () => over.failingSince,
    lastExportError: () => over.error,
  };
}

void test('liveness: alive while starting, then while the heartbeat is at most the limit old; stalled past it', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 60_000 });
  assert.deepEqual(h.liveness(T0), { ok: true, body: { status: 'alive', loop: 'starting' } });
  h.beat(T0);
  assert.deepEqual(h.liveness(T0 + 10_000), { ok: true, body: { status: 'alive', heartbeatAgeMs: 10_000 } });
  const stale = h.liveness(T0 + 12_500);
  assert.equal(stale.ok, false);
  assert.deepEqual(stale.body, { status: 'stalled', reasons: ["the pipeline's tick has not run for 12 s"] });
  h.beat(T0 + 12_600);
  assert.equal(h.liveness(T0 + 12_700).ok, true);
});

void test('liveness: once shutting down, the loop stops beating on purpose and the process is still alive', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 60_000 });
  h.beat(T0);
  h.shutDown();
  assert.deepEqual(h.liveness(T0 + 60_000), {
    ok: true,
    body: { status: 'alive', loop: 'flushing before exit' },
  });
});

void test('readiness: not ready while starting, then as the source says', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 60_000 });
  assert.deepEqual(h.readiness(T0), { ok: false, body: { status: 'not ready', reasons: ['starting'] } });
  h.watch(facts({ ready: false }));
  assert.deepEqual(h.readiness(T0), {
    ok: false,
    body: { status: 'not ready', reasons: ['socket /s not subscribed'] },
  });
  h.watch(facts());
  assert.deepEqual(h.readiness(T0), {
    ok: true,
    body: { status: 'ready', source: 'socket /s subscribed', exporter: 'ok' },
  });
});

void test('readiness: exports failing for less than the threshold are said but still ready; at it, not ready', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 60_000 });
  h.watch(facts({ failingSince: T0, error: '14 UNAVAILABLE' }));
  assert.deepEqual(h.readiness(T0 + 59_999), {
    ok: true,
    body: { status: 'ready', source: 'socket /s subscribed', exporter: 'failing for 59 s: 14 UNAVAILABLE' },
  });
  assert.deepEqual(h.readiness(T0 + 75_000), {
    ok: false,
    body: { status: 'not ready', reasons: ['exporter failing for 75 s: 14 UNAVAILABLE'] },
  });
});

void test('readiness: both reasons at once, the source first', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 1_000 });
  h.watch(facts({ ready: false, failingSince: T0, error: 'Bad Request' }));
  assert.deepEqual(h.readiness(T0 + 2_000).body, {
    status: 'not ready',
    reasons: ['socket /s not subscribed', 'exporter failing for 2 s: Bad Request'],
  });
});

void test('readiness: a threshold of 0 never fails on exports', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 0 });
  h.watch(facts({ failingSince: T0 - 3_600_000, error: '14 UNAVAILABLE' }));
  const v = h.readiness(T0);
  assert.equal(v.ok, true);
  assert.equal(v.body.exporter, 'failing for 3600 s: 14 UNAVAILABLE');
});

void test('readiness: shutting down answers not ready whatever else holds', () => {
  const h = new HealthState({ staleAfterMs: 10_000, exportFailureMs: 60_000 });
  h.watch(facts());
  h.shutDown();
  assert.deepEqual(h.readiness(T0), { ok: false, body: { status: 'shutting down' } });
});
