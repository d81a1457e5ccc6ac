// The qlog directory writes off the event loop: in order, bounded, with failures counted rather than thrown.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QlogDirectory } from '../../src/export/qlog.js';

test('appends land in order, after drain', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-qlog-unit-'));
  const q = await QlogDirectory.open(join(dir, 'new', 'sub'), 1 << 20);
  const path = join(q.dir, 'a.sqlog');
  for (let i = 0; i < 100; i++) assert.equal(q.append(path, `${i}\n`), true);
  await q.drain();
  const lines = (await readFile(path, 'utf8')).trim().split('\n');
  assert.deepEqual(
    lines,
    Array.from({ length: 100 }, (_, i) => String(i)),
  );
  assert.equal(q.stats.writeErrors, 0);
  await rm(dir, { recursive: true });
});

test('the oldest finished files go when the bound is passed, including those of an earlier run', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-qlog-unit-'));
  await writeFile(join(dir, 'old.sqlog'), 'x'.repeat(600));
  const q = await QlogDirectory.open(dir, 1000);
  const path = join(dir, 'b.sqlog');
  q.append(path, 'y'.repeat(500));
  q.finished(path, 500);
  await q.drain();
  assert.deepEqual(await readdir(dir), ['b.sqlog']);
  assert.equal(q.stats.rotated, 1);
  await rm(dir, { recursive: true });
});

test('a write the disk refuses is counted with its reason', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-qlog-unit-'));
  const q = await QlogDirectory.open(dir, 1 << 20);
  q.append(join(dir, 'missing', 'c.sqlog'), 'z\n');
  await q.drain();
  assert.equal(q.stats.writeErrors, 1);
  assert.match(q.lastError ?? '', /ENOENT/);
  await rm(dir, { recursive: true });
});

test('a new directory is created 0700 at every level, and the files in it 0600', async () => {
  const old = process.umask(0o022);
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-qlog-unit-'));
  try {
    const q = await QlogDirectory.open(join(dir, 'new', 'sub'), 1 << 20);
    q.append(join(q.dir, 'd.sqlog'), 'x\n');
    await q.drain();
    assert.equal((await stat(join(dir, 'new'))).mode & 0o777, 0o700);
    assert.equal((await stat(q.dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(q.dir, 'd.sqlog'))).mode & 0o777, 0o600);
  } finally {
    process.umask(old);
    await rm(dir, { recursive: true });
  }
});

test('an existing directory keeps the mode its owner gave it; the files are still 0600', async () => {
  const old = process.umask(0o022);
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-qlog-unit-'));
  try {
    await chmod(dir, 0o750);
    const q = await QlogDirectory.open(dir, 1 << 20);
    q.append(join(dir, 'e.sqlog'), 'x\n');
    await q.drain();
    assert.equal((await stat(dir)).mode & 0o777, 0o750);
    assert.equal((await stat(join(dir, 'e.sqlog'))).mode & 0o777, 0o600);
  } finally {
    process.umask(old);
    await rm(dir, { recursive: true });
  }
});
