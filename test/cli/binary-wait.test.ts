// `--binary` naming a file that appears later (a pod's H2O container copying its executable into a shared volume
// after the sidecar started): h2o-otel waits for it, then traces the processes run from it.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startCli } from '../../harness/cli.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../../harness/usdt-fixture.js';
import { skipBpf, waitFor } from '../../harness/wait.js';

/** The CLI on `--binary path`, once it says it waits for the file. */
async function waitingCli(path: string, exporter: string): Promise<ReturnType<typeof startCli>> {
  const cli = startCli(['--binary', path, '--exporter', exporter, '--status-interval', '0']);
  await waitFor(
    () => cli.stderrSoFar().includes('does not exist yet: waiting for it'),
    'the wait',
    20_000,
    () => cli.stderrSoFar(),
  );
  return cli;
}

test('--binary that does not exist yet is waited for, then traced', { skip: skipBpf }, async () => {
  const fixture = await buildUsdtFixture();
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-later-'));
  const later = join(dir, 'h2o');
  const cli = await waitingCli(later, 'console');
  try {
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(cli.child.exitCode, null, cli.stderrSoFar());
    await copyFile(fixture, later);
    await waitFor(
      () => /attached 1 uprobe/.test(cli.stderrSoFar()),
      'the probe',
      20_000,
      () => cli.stderrSoFar(),
    );
    const fx = await startUsdtFixture(later);
    try {
      await get(fx.port, '/from-the-later-binary');
    } finally {
      await fx.stop();
    }
    cli.child.kill('SIGTERM');
    const r = await cli.result;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\/from-the-later-binary/);
  } finally {
    cli.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});

test('a signal ends the wait for a --binary that never appears, saying so', { skip: skipBpf }, async () => {
  const never = join(tmpdir(), `h2o-otel-never-${process.pid}`, 'h2o');
  const cli = await waitingCli(never, 'none');
  try {
    cli.child.kill('SIGTERM');
    const r = await cli.result;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /stopped while waiting for --binary .*never.* to exist/);
  } finally {
    cli.child.kill('SIGKILL');
  }
});
