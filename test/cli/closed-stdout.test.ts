// A reader of stdout that goes away (`h2o-otel --help | head -1`) ends h2o-otel quietly, not with a stack trace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { cliPath, fixture } from '../../harness/cli.js';

for (const args of [['--help'], ['--replay', fixture('http3.jsonl')]]) {
  test(`h2o-otel ${args[0]!} with stdout closed by its reader`, async () => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader is gone before h2o-otel writes a byte: its first write fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.doesNotMatch(stderr, /EPIPE|Unhandled|\n\s+at /);
    assert.equal(code, 0, stderr);
  });
}
