// koffi's native addon (libbpf, libc) is loaded only to trace a process: replaying or reading the socket must not
// need it, nor pay for loading it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture, repoRoot } from '../../harness/cli.js';

/** Runs the CLI's main() in a fresh process, then imports `then` (if any); prints the koffi modules loaded. */
function koffiModulesAfter(args: string[], then = ''): number {
  const script = `
    import { createRequire } from 'node:module';
    const { main } = await import(${JSON.stringify(join(repoRoot, 'dist', 'src', 'cli', 'main.js'))});
    const code = await main(['node', 'h2o-otel', ...${JSON.stringify(args)}], {});
    if (code !== 0) throw new Error('exit ' + code);
    if (${JSON.stringify(then)}) await import(${JSON.stringify(then)});
    const cache = createRequire(import.meta.url).cache;
    console.log(Object.keys(cache).filter((p) => /koffi/.test(p)).length);`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
  return Number(out.toString().trim());
}

test('a replay loads no native addon; the USDT source does', () => {
  const args = ['--replay', fixture('http1.jsonl'), '--exporter', 'none', '--quiet'];
  assert.equal(koffiModulesAfter(args), 0);
  const usdt = join(repoRoot, 'dist', 'src', 'sources', 'usdt', 'usdt-source.js');
  assert.ok(koffiModulesAfter(args, usdt) > 0, 'the check sees koffi once it is loaded');
});
