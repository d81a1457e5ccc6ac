// Every capture in the repository gives the same spans, field by field, as the code before the pipeline was
// rebuilt: test/fixtures/spans/*.json were made by that code (ids renamed by harness/span-shape.ts).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { AlwaysOnSampler, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { defaultResource } from '@opentelemetry/resources';
import { DEFAULT_CORRELATOR_OPTIONS } from '../../src/correlate/correlator.js';
import { DEFAULT_BATCH_OPTIONS } from '../../src/export/batch-processor.js';
import { DEFAULT_SANITIZED_HEADERS } from '../../src/otel/header-policy.js';
import type { HeaderPolicyOptions } from '../../src/otel/header-policy.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../../src/otel/url.js';
import { buildPipeline } from '../../src/pipeline.js';
import { JsonLinesSession } from '../../src/sources/json-lines.js';
import { repoRoot } from '../../harness/cli.js';
import { spanShapes } from '../../harness/span-shape.js';

const CONFIGS: Record<string, HeaderPolicyOptions> = {
  defaults: { request: [], response: [], sanitize: [...DEFAULT_SANITIZED_HEADERS], maxValueLength: 4096 },
  'all-headers': {
    request: ['*'],
    response: ['*'],
    sanitize: [...DEFAULT_SANITIZED_HEADERS],
    maxValueLength: 64,
  },
};

async function spansOf(file: string, headers: HeaderPolicyOptions): Promise<unknown> {
  const exporter = new InMemorySpanExporter();
  const pipeline = buildPipeline(
    {
      correlator: DEFAULT_CORRELATOR_OPTIONS,
      maxLineBytes: 1 << 20,
      headers,
      sensitiveQueryParams: DEFAULT_SENSITIVE_QUERY_PARAMS,
      sampler: new AlwaysOnSampler(),
      resource: defaultResource(),
      batch: { ...DEFAULT_BATCH_OPTIONS, maxQueueSize: 1 << 20 },
    },
    { exporter },
  );
  const session = new JsonLinesSession(pipeline);
  session.push(await readFile(join(repoRoot, file)));
  session.end();
  await pipeline.processor.forceFlush();
  // Through JSON, as the golden files were written: undefined fields drop out the same way.
  return JSON.parse(JSON.stringify(spanShapes(exporter.getFinishedSpans())));
}

for (const [name, headers] of Object.entries(CONFIGS)) {
  test(`every capture gives the same spans as before (${name})`, async () => {
    const golden = JSON.parse(
      await readFile(join(repoRoot, 'test', 'fixtures', 'spans', `${name}.json`), 'utf8'),
    ) as Record<string, unknown[]>;
    const files = Object.keys(golden);
    assert.ok(files.length >= 20, `only ${files.length} captures`);
    let spans = 0;
    for (const file of files) {
      const want = golden[file]!;
      spans += want.length;
      assert.deepEqual(await spansOf(file, headers), want, file);
    }
    assert.ok(spans > 80, `only ${spans} spans`);
  });
}
