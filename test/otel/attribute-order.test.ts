// Every capture's spans list their attributes in the order of test/fixtures/spans/*.json, written when the
// mappers built objects: the OTLP encoder writes a span's AttributeList in its order, so that order is the wire's.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { FinishedSpan } from '../../src/otel/finished-span.js';
import { repoRoot } from '../../harness/cli.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';
import { SPAN_FIXTURE_CONFIGS, spanShapes } from '../../harness/span-shape.js';

function listedNames(span: ReadableSpan): string[] {
  assert.ok(span instanceof FinishedSpan);
  return span.attributeList.keys.map((k) => k.name);
}

for (const [name, headers] of Object.entries(SPAN_FIXTURE_CONFIGS)) {
  test(`every span's attribute list is in the order the fixtures hold (${name})`, async () => {
    const golden = JSON.parse(
      await readFile(join(repoRoot, 'test', 'fixtures', 'spans', `${name}.json`), 'utf8'),
    ) as Record<string, { attributes: Record<string, unknown> }[]>;
    let compared = 0;
    for (const [capture, want] of Object.entries(golden)) {
      const spans = await replayInto(testPipeline(headers), await readFile(join(repoRoot, capture)));
      // The object form lists the attributes in the list's order; the shapes (sorted as the fixtures are) hold it.
      for (const span of spans) assert.deepEqual(Object.keys(span.attributes), listedNames(span), capture);
      const shapes = spanShapes(spans) as { attributes: Record<string, unknown> }[];
      assert.equal(shapes.length, want.length, capture);
      shapes.forEach((shape, i) => {
        // JSON drops undefined values; the mappers write none.
        assert.deepEqual(
          Object.keys(shape.attributes),
          Object.keys(want[i]!.attributes),
          `${capture} span ${i}`,
        );
        compared++;
      });
    }
    assert.ok(compared > 80, `only ${compared} spans`);
  });
}
