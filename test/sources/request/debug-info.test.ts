// Where the DWARF of a binary is found: in the binary, by build-id under the debug root, by .gnu_debuglink, or in
// the file the user names; and the advice when there is none.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BpfError } from '../../../src/sources/bpf/errors.js';
import { findDebugInfo } from '../../../src/sources/request/debug-info.js';
import { readBuildId, readUsdtNotes } from '../../../src/sources/usdt/elf-notes.js';
import { buildStructFixture, startStructFixture } from '../../../harness/struct-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-debuginfo-'));
const binary = buildStructFixture(dir, 'A');
const other = buildStructFixture(dir, 'B');
const debugFile = join(dir, 'a.debug');
execFileSync('objcopy', ['--only-keep-debug', binary, debugFile]);
const stripped = join(dir, 'stripped');
execFileSync('strip', ['--strip-debug', '-o', stripped, binary]);
const emptyRoot = mkdtempSync(join(tmpdir(), 'h2o-otel-debugroot-'));

test('the build-id is read from the ELF note, as readelf shows it', () => {
  const readelf = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', binary]).toString())?.[1];
  assert.ok(readelf !== undefined && readelf.length === 40);
  assert.equal(readBuildId(binary), readelf);
  assert.equal(readBuildId(stripped), readelf);
  assert.equal(readBuildId(buildStructFixture(dir, 'A', false)), undefined);
  assert.deepEqual(readUsdtNotes(binary), []);
});

test('a binary built with -g is its own debug info', () => {
  assert.deepEqual(findDebugInfo(binary, { debugRoot: emptyRoot }), {
    path: binary,
    buildId: readBuildId(binary),
    from: 'binary',
  });
});

test('a stripped binary finds its debug file by build-id under the debug root', () => {
  const root = mkdtempSync(join(tmpdir(), 'h2o-otel-debugroot-'));
  const id = readBuildId(binary) ?? '';
  mkdirSync(join(root, '.build-id', id.slice(0, 2)), { recursive: true });
  const path = join(root, '.build-id', id.slice(0, 2), `${id.slice(2)}.debug`);
  copyFileSync(debugFile, path);
  assert.deepEqual(findDebugInfo(stripped, { debugRoot: root }), { path, buildId: id, from: 'build-id' });
});

test('a stripped binary finds its debug file by .gnu_debuglink next to it', () => {
  const linked = join(dir, 'linked');
  execFileSync('objcopy', [`--add-gnu-debuglink=${debugFile}`, stripped, linked]);
  const found = findDebugInfo(linked, { debugRoot: emptyRoot });
  assert.equal(found.path, debugFile);
  assert.equal(found.from, 'debuglink');
});

test('without debug info the error says how to get it', () => {
  assert.throws(
    () => findDebugInfo(stripped, { debugRoot: emptyRoot }),
    (err: unknown) =>
      err instanceof BpfError &&
      err.message.startsWith(`${stripped} has no debug info`) &&
      err.message.includes(join(emptyRoot, '.build-id', (readBuildId(stripped) ?? '').slice(0, 2))) &&
      err.message.includes('-dbgsym') &&
      err.message.includes('--debug-file PATH') &&
      err.message.includes('build H2O with debug info'),
  );
});

test('--debug-file: used when it matches, refused when it belongs to another build or has no DWARF', () => {
  assert.deepEqual(findDebugInfo(stripped, { debugFile, debugRoot: emptyRoot }), {
    path: debugFile,
    buildId: readBuildId(binary),
    from: 'debug-file',
  });
  assert.throws(() => findDebugInfo(stripped, { debugFile: other }), /belongs to another build/);
  assert.throws(() => findDebugInfo(binary, { debugFile: stripped }), /has no DWARF/);
});

test('--pid (/proc/PID/exe): .gnu_debuglink is looked up beside the executable, not in /proc', async () => {
  const linkedDir = mkdtempSync(join(tmpdir(), 'h2o-otel-linked-'));
  const linked = join(linkedDir, 'h2o');
  execFileSync('objcopy', ['--add-gnu-debuglink=' + debugFile, stripped, linked]);
  copyFileSync(debugFile, join(linkedDir, 'a.debug'));
  const running = await startStructFixture(linked);
  try {
    const found = findDebugInfo(`/proc/${running.pid}/exe`, { debugRoot: emptyRoot });
    assert.equal(found.from, 'debuglink');
    assert.equal(found.path, join(`/proc/${running.pid}/root`, linkedDir, 'a.debug'));
    assert.equal(found.buildId, readBuildId(binary));
  } finally {
    running.stop();
  }
});
