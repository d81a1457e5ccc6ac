// Every capture in the repository gives the same spans, field by field, as test/fixtures/spans/*.json (ids renamed
// by harness/span-shape.ts). Those were made by the code before the pipeline was rebuilt; after a change meant to
// alter spans, UPDATE_SPAN_FIXTURES=1 rewrites them, and the diff shows what changed.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HeaderPolicyOptions } from '../../src/otel/header-policy.js';
import { repoRoot } from '../../harness/cli.js';
import { SPAN_FIXTURE_CONFIGS, spanShapes } from '../../harness/span-shape.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';

async function spansOf(file: string, headers: HeaderPolicyOptions): Promise<unknown> {
  const spans = await replayInto(testPipeline(headers), await readFile(join(repoRoot, file)));
  // Through JSON, as the golden files were written: undefined fields drop out the same way.
  return JSON.parse(JSON.stringify(spanShapes(spans)));
}

const spansDir = join(repoRoot, 'test', 'fixtures', 'spans');

/** Every capture in the repository. */
async function captures(): Promise<string[]> {
  const h2olog = join('test', 'fixtures', 'h2olog');
  const files = [
    ...(await readdir(join(repoRoot, h2olog)))
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => join(h2olog, f)),
    ...(await readdir(join(repoRoot, h2olog, 'lab'))).map((f) => join(h2olog, 'lab', f)),
    ...(await readdir(join(repoRoot, 'examples', 'captures'))).map((f) => join('examples', 'captures', f)),
  ];
  return files.sort();
}

for (const [name, headers] of Object.entries(SPAN_FIXTURE_CONFIGS)) {
  test(`every capture gives the same spans as before (${name})`, async () => {
    const file = join(spansDir, `${name}.json`);
    if (process.env.UPDATE_SPAN_FIXTURES === '1') {
      const all: Record<string, unknown> = {};
      for (const capture of await captures()) all[capture] = await spansOf(capture, headers);
      await writeFile(file, JSON.stringify(all, null, 1) + '\n');
    }
    const golden = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown[]>;
    assert.deepEqual(Object.keys(golden).sort(), await captures(), 'a capture without its spans');
    let spans = 0;
    for (const [capture, want] of Object.entries(golden)) {
      spans += want.length;
      assert.deepEqual(await spansOf(capture, headers), want, capture);
    }
    assert.ok(spans > 80, `only ${spans} spans`);
  });
}
