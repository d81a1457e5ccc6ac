// Builds test/fixtures/request/struct-layouts.c with gcc -g: two "releases" of the same struct names with different
// field orders (ORDER_B adds a field), for the tests that resolve layouts by field name from debug info.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { repoRoot } from './cli.js';

export type FixtureOrder = 'A' | 'B';

const SOURCE = join(repoRoot, 'test', 'fixtures', 'request', 'struct-layouts.c');

/** Compiles the fixture into `dir` (with a build-id unless told otherwise) and returns the binary's path. */
export function buildStructFixture(dir: string, order: FixtureOrder, buildId = true): string {
  const out = join(dir, `struct-layouts-${order}${buildId ? '' : '-no-build-id'}`);
  const define = order === 'B' ? ['-DORDER_B'] : [];
  execFileSync('gcc', [
    ...define,
    '-g',
    '-O0',
    `-Wl,--build-id=${buildId ? 'sha1' : 'none'}`,
    '-o',
    out,
    SOURCE,
  ]);
  return out;
}

/** Runs a built fixture: the bytes of its `h2o_req_t` and `h2o_conn_t` instances. */
export function structFixtureBytes(binary: string, dir: string): { req: Buffer; conn: Buffer } {
  const req = join(dir, `${basename(binary)}-req.bin`);
  const conn = join(dir, `${basename(binary)}-conn.bin`);
  execFileSync(binary, [req, conn]);
  return { req: readFileSync(req), conn: readFileSync(conn) };
}
