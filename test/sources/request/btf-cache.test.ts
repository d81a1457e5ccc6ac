// BTF is made once per build-id: a second request reuses the file without running pahole, and a failed or absent
// pahole leaves no partial file behind.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BpfError } from '../../../src/sources/bpf/errors.js';
import { btfFor, defaultBtfCacheDir } from '../../../src/sources/request/btf-cache.js';
import { findDebugInfo } from '../../../src/sources/request/debug-info.js';
import { buildStructFixture } from '../../../harness/struct-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-btfcache-'));
const debug = findDebugInfo(buildStructFixture(dir, 'A'));

test('the BTF is cached under the build-id and reused without pahole', async () => {
  const cacheDir = join(dir, 'cache');
  const first = await btfFor(debug, { cacheDir });
  assert.equal(first.path, join(cacheDir, `${debug.buildId}.btf`));
  assert.equal(first.reused, false);
  assert.equal(readFileSync(first.path).readUInt16LE(0), 0xeb9f);
  const mtime = statSync(first.path).mtimeMs;
  const second = await btfFor(debug, { cacheDir, pahole: join(dir, 'no-such-pahole') });
  assert.deepEqual(second, { path: first.path, reused: true });
  assert.equal(statSync(first.path).mtimeMs, mtime);
  assert.deepEqual(readdirSync(cacheDir), [`${debug.buildId}.btf`]);
});

test('a binary without build-id is cached under its content hash', async () => {
  const noId = findDebugInfo(buildStructFixture(dir, 'B', false));
  assert.equal(noId.buildId, undefined);
  const { path } = await btfFor(noId, { cacheDir: join(dir, 'cache-hash') });
  assert.match(path, /\/sha256-[0-9a-f]{64}\.btf$/);
});

test('a missing pahole says to install dwarves, and leaves nothing in the cache', async () => {
  const cacheDir = join(dir, 'cache-nopahole');
  await assert.rejects(
    btfFor(debug, { cacheDir, pahole: join(dir, 'no-such-pahole') }),
    (err: unknown) => err instanceof BpfError && err.message.includes('apt-get install dwarves'),
  );
  assert.deepEqual(readdirSync(cacheDir), []);
});

test('pahole failing is an error with its words, and leaves nothing in the cache', async () => {
  const cacheDir = join(dir, 'cache-fail');
  const notElf = join(dir, 'not-elf');
  writeFileSync(notElf, 'hello\n');
  await assert.rejects(
    btfFor({ path: notElf, buildId: 'feedface', from: 'debug-file' }, { cacheDir }),
    (err: unknown) =>
      err instanceof BpfError && err.message.includes(`pahole could not turn the debug info of ${notElf}`),
  );
  assert.deepEqual(readdirSync(cacheDir), []);
});

test('the default cache directory follows XDG_CACHE_HOME, else ~/.cache', () => {
  assert.equal(defaultBtfCacheDir({ XDG_CACHE_HOME: '/x/cache' }, '/home/u'), '/x/cache/h2o-otel/btf');
  assert.equal(defaultBtfCacheDir({ XDG_CACHE_HOME: '' }, '/home/u'), '/home/u/.cache/h2o-otel/btf');
  assert.equal(defaultBtfCacheDir({}, '/home/u'), '/home/u/.cache/h2o-otel/btf');
});

test('the cache is private: its directory 0700, its files 0600, and a file another may write is made again', async () => {
  const cacheDir = join(dir, 'cache-private');
  const first = await btfFor(debug, { cacheDir });
  assert.equal(statSync(cacheDir).mode & 0o777, 0o700);
  assert.equal(statSync(first.path).mode & 0o777, 0o600);
  // Someone who could write the file could choose which bytes of H2O the probe reads: not reused.
  writeFileSync(first.path, 'planted');
  chmodSync(first.path, 0o666);
  const again = await btfFor(debug, { cacheDir });
  assert.equal(again.reused, false);
  assert.equal(readFileSync(again.path).readUInt16LE(0), 0xeb9f, 'made again by pahole');
  assert.deepEqual(readdirSync(cacheDir), [`${debug.buildId}.btf`], 'no temporary left');
});
