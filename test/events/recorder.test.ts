// A recording holds every header value in clear: it is created for its owner only and never replaces a file
// unless asked to.
import assert from 'node:assert/strict';
import { chmod, lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { EventRecorder } from '../../src/events/recorder.js';

// The usual umask: without the recorder's own mode, a new file would be 0644.
process.umask(0o022);
const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-recorder-'));
after(() => rm(dir, { recursive: true, force: true }));

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

test('a new recording is created mode 0600', async () => {
  const path = join(dir, 'new.jsonl');
  const recorder = new EventRecorder(path);
  await recorder.close();
  assert.equal(await modeOf(path), 0o600);
});

test('an existing file is neither truncated nor replaced: EEXIST', async () => {
  const path = join(dir, 'kept.jsonl');
  await writeFile(path, 'an older recording\n');
  assert.throws(() => new EventRecorder(path), { code: 'EEXIST' });
  assert.equal(await readFile(path, 'utf8'), 'an older recording\n');
});

test('a symbolic link is not followed, even to a file that does not exist yet', async () => {
  const path = join(dir, 'link.jsonl');
  await symlink(join(dir, 'target.jsonl'), path);
  assert.throws(() => new EventRecorder(path), { code: 'EEXIST' });
  await assert.rejects(stat(join(dir, 'target.jsonl')), { code: 'ENOENT' });
});

test('overwrite replaces an existing file and narrows its mode to 0600', async () => {
  const path = join(dir, 'replaced.jsonl');
  await writeFile(path, 'an older recording\n');
  await chmod(path, 0o644);
  const recorder = new EventRecorder(path, true);
  await recorder.close();
  assert.equal(await readFile(path, 'utf8'), '');
  assert.equal(await modeOf(path), 0o600);
});

test('overwrite replaces a link to a file with a new file, never writing through it', async () => {
  const target = join(dir, 'someone-elses.txt');
  await writeFile(target, 'not ours\n');
  await chmod(target, 0o644);
  const path = join(dir, 'planted-link.jsonl');
  await symlink(target, path);
  const recorder = new EventRecorder(path, true);
  await recorder.close();
  assert.equal(await readFile(target, 'utf8'), 'not ours\n');
  assert.equal((await stat(target)).mode & 0o777, 0o644, 'the target keeps its mode');
  assert.equal((await lstat(path)).isFile(), true, 'the link became a file of our own');
  assert.equal(await modeOf(path), 0o600);
});

test('overwrite writes to a device as it is (/dev/null; /dev/stdout is a link to one)', async () => {
  const recorder = new EventRecorder('/dev/null', true);
  await recorder.close();
  assert.equal((await stat('/dev/null')).isCharacterDevice(), true, '/dev/null is left a device');
});
