// Builds test/fixtures/request/struct-layouts.c with gcc -g: H2O's struct names (h2o-structs.h) in two field orders
// (ORDER_B reorders, pads and adds fields), for the tests that resolve layouts by field name from debug info.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { repoRoot } from './cli.js';

export type FixtureOrder = 'A' | 'B';

const DIR = join(repoRoot, 'test', 'fixtures', 'request');
const SOURCES = ['struct-layouts.c', 'h2o-dispose.c'].map((f) => join(DIR, f));

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
    ...SOURCES,
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

export interface ServingFixture {
  readonly pid: number;
  /** Let the fixture dispose its scripted requests; resolves once it has (it then exits). */
  run(): Promise<void>;
  /** Kill it if it still runs. */
  stop(): void;
}

/** Starts `binary serve` and waits for its `READY pid=N` line. */
export function startStructFixture(binary: string, timeoutMs = 10_000): Promise<ServingFixture> {
  const child = spawn(binary, ['serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const lines = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/^DONE$/m.test(out)) resolve();
    });
    child.once('close', (code) => reject(new Error(`${binary} serve exited (${code}); printed: ${out}`)));
  });
  const within = <T>(p: Promise<T>, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${binary} serve: no ${what} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      p.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  const ready = new Promise<number>((resolve, reject) => {
    const onData = (): void => {
      const m = /^READY pid=(\d+)$/m.exec(out);
      if (m === null) return;
      child.stdout.off('data', onData);
      resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    lines.catch(reject);
  });
  lines.catch(() => undefined); // observed by run() or ready
  return within(ready, 'READY').then(
    (pid) => ({
      pid,
      run: () => {
        child.stdin.end('go\n');
        return within(lines, 'DONE');
      },
      stop: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
    }),
    (err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    },
  );
}
