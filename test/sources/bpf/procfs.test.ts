// The /proc helpers on this very process (no root needed), and the capability check on plain status text.
import assert from 'node:assert/strict';
import { mkdtempSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BpfError } from '../../../src/sources/bpf/errors.js';
import {
  describeExecutable,
  executableFileId,
  executableOfPid,
  missingCapabilities,
  pidNamespace,
  processesRunning,
  processStartTime,
  ReplacedFileWatch,
} from '../../../src/sources/bpf/procfs.js';

/** A pid no process has (above the kernel's pid_max limit of 2^22). */
const NO_PID = 999_999_999;
const status = (capEff: string): string => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;

test('capabilities: CAP_SYS_ADMIN alone, or CAP_BPF with CAP_PERFMON, is enough; the missing ones are named', () => {
  assert.deepEqual(missingCapabilities(status('000001ffffffffff')), [], 'root');
  assert.deepEqual(missingCapabilities(status((1n << 21n).toString(16).padStart(16, '0'))), [], 'SYS_ADMIN');
  assert.deepEqual(missingCapabilities(status(((1n << 38n) | (1n << 39n)).toString(16))), [], 'BPF+PERFMON');
  assert.deepEqual(missingCapabilities(status((1n << 39n).toString(16))), ['CAP_PERFMON']);
  assert.deepEqual(missingCapabilities(status('0000000000000000')), ['CAP_BPF', 'CAP_PERFMON']);
  assert.equal(missingCapabilities('Name:\tnode\n'), undefined, 'a status without CapEff says nothing');
});

test('the start time of a process is stable, and absent for a pid with no process', () => {
  const t = processStartTime(process.pid);
  assert.match(t ?? '', /^\d+$/);
  assert.equal(processStartTime(process.pid), t);
  assert.equal(processStartTime(NO_PID), undefined);
});

test("a process's executable is reached through /proc/PID/exe and described by its real path", () => {
  const exe = executableOfPid(process.pid);
  assert.equal(exe, `/proc/${process.pid}/exe`);
  assert.equal(describeExecutable(exe), `${realpathSync(process.execPath)} (${exe})`);
  assert.equal(describeExecutable('/usr/sbin/h2o'), '/usr/sbin/h2o');
});

test('a pid with no process is a clear error', () => {
  assert.throws(
    () => executableOfPid(NO_PID),
    (err: unknown) => err instanceof BpfError && /no process with pid 999999999 here/.test(err.message),
  );
});

test('the processes running an executable are found by its file, this one among them', () => {
  const id = executableFileId(process.execPath);
  const st = statSync(process.execPath);
  assert.equal(id, `${st.dev}:${st.ino}`);
  assert.ok(processesRunning(id).includes(process.pid));
  assert.deepEqual(processesRunning('0:0'), []);
});

test('--binary must name an existing file', () => {
  assert.throws(() => executableFileId('/nonexistent/h2o'), /--binary \/nonexistent\/h2o: no such file/);
  assert.throws(() => executableFileId(tmpdir()), /not a file; give the path of the h2o executable/);
});

test('a replaced file (new inode) is noticed once, looking at most every 2 s', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'h2o-otel-watch-')), 'h2o');
  writeFileSync(path, 'v1');
  const watch = new ReplacedFileWatch(path, executableFileId(path));
  assert.equal(watch.replaced(10_000), false, 'unchanged');
  writeFileSync(`${path}.new`, 'v2');
  renameSync(`${path}.new`, path);
  assert.equal(watch.replaced(11_000), false, 'looked less than 2 s ago');
  assert.equal(watch.replaced(12_000), true);
  assert.equal(watch.fileId, executableFileId(path));
  assert.equal(watch.replaced(14_000), false, 'once per replacement');
});

test('the PID namespace of this process is known', () => {
  const ns = pidNamespace();
  assert.ok(ns !== undefined && ns.ino > 0n);
});
