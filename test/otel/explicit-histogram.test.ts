// h2o-otel's own explicit-bucket histogram: counts, bounds as OTLP defines them, min/max/sum, the cap on attribute
// sets with its overflow set, and attribute objects built once per set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExplicitHistogram, MAX_ATTRIBUTE_SETS } from '../../src/otel/explicit-histogram.js';

test('values fall in (bound[i-1], bound[i]], the last bucket above every bound', () => {
  const h = new ExplicitHistogram('x', 's', '', [1, 2]);
  for (const v of [0, 1, 1.5, 2, 2.01, 100]) h.record('k', () => ({ k: 1 }), v);
  const [p] = h.dataPoints([0, 0], [1, 0], false);
  assert.deepEqual(p!.value.buckets, { boundaries: [1, 2], counts: [2, 2, 2] });
  assert.deepEqual([p!.value.count, p!.value.sum, p!.value.min, p!.value.max], [6, 106.51, 0, 100]);
  assert.deepEqual(p!.attributes, { k: 1 });
  assert.equal(p!.exemplars, undefined);
});

test('attribute objects are built once per set, and the sets are capped with one overflow set', () => {
  const h = new ExplicitHistogram('x', 's', '', [1]);
  let built = 0;
  for (let i = 0; i < MAX_ATTRIBUTE_SETS + 500; i++)
    for (let r = 0; r < 2; r++)
      h.record(
        `set${i}`,
        () => {
          built++;
          return { i };
        },
        0.5,
      );
  const points = h.dataPoints([0, 0], [1, 0], false);
  assert.equal(points.length, MAX_ATTRIBUTE_SETS);
  assert.equal(built, MAX_ATTRIBUTE_SETS - 1);
  const overflow = points.find((p) => p.attributes['otel.metric.overflow'] === true);
  assert.equal(overflow!.value.count, 2 * 501);
  assert.equal(
    points.reduce((n, p) => n + p.value.count, 0),
    2 * (MAX_ATTRIBUTE_SETS + 500),
  );
  // An exemplar of an overflowed set lands on the overflow point.
  h.offer('set99999', { value: 2, time: [1, 0], traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
  const taken = h.dataPoints([0, 0], [1, 0], true).find((p) => p.attributes['otel.metric.overflow'] === true);
  assert.equal(taken!.exemplars!.length, 1);
});
