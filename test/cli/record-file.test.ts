// `--record FILE` through the real CLI: a new file is 0600, an existing one is refused (exit 1, naming --force)
// and left as it was, `--force` replaces it; --help says a recording holds secrets.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fixture, runCli } from '../../harness/cli.js';

const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-record-cli-'));
after(() => rm(dir, { recursive: true, force: true }));

const record = (path: string, ...more: string[]): ReturnType<typeof runCli> =>
  runCli(['--replay', fixture('http1.jsonl'), '--exporter', 'none', '-q', '--record', path, ...more]);

test('--record creates its file mode 0600', async () => {
  const path = join(dir, 'new.jsonl');
  const res = await record(path);
  assert.equal(res.code, 0, res.stderr);
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.ok((await readFile(path, 'utf8')).length > 0);
});

test('--record refuses an existing file, names --force, and leaves the file as it was', async () => {
  const path = join(dir, 'existing.jsonl');
  await writeFile(path, 'keep me\n');
  const res = await record(path);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /--record .*existing\.jsonl: the file exists; add --force to overwrite it/);
  assert.equal(await readFile(path, 'utf8'), 'keep me\n');
});

test('--record --force replaces an existing file, and makes it 0600', async () => {
  const path = join(dir, 'forced.jsonl');
  await writeFile(path, 'replace me\n');
  await chmod(path, 0o644);
  const res = await record(path, '--force');
  assert.equal(res.code, 0, res.stderr);
  const text = await readFile(path, 'utf8');
  assert.ok(!text.includes('replace me') && text.includes('"h1_accept"'));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
});

test('--help says a recording holds secrets in clear, and documents --force', async () => {
  const res = await runCli(['--help']);
  assert.equal(res.code, 0);
  const help = res.stdout.replace(/\s+/g, ' ');
  assert.match(help, /--record <file> .*in clear .*0600/);
  assert.match(help, /--force .*--record/);
});
