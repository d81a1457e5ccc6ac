// Builds and runs test/fixtures/usdt/h2o-fixture.c: a small HTTP/1.1 server that fires H2O's USDT probes
// (providers h2o and quicly, with semaphores), so tests can attach a real BPF program without a real H2O.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, rename, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** At run time this file is dist/harness/usdt-fixture.js, two levels below the repository root. */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const srcDir = join(repoRoot, 'test', 'fixtures', 'usdt');
const outDir = join(repoRoot, 'dist', 'usdt-fixture');
const binPath = join(outDir, 'h2o-usdt-fixture');
/** h2o-fixture.c also ends each request in h2o_dispose_request, with the request in H2O's structs. */
const requestDir = join(repoRoot, 'test', 'fixtures', 'request');
const sources = [
  ...['probes.d', 'h2o-fixture.c', 'connect-sib.c'].map((f) => join(srcDir, f)),
  ...['h2o-structs.h', 'h2o-dispose.c'].map((f) => join(requestDir, f)),
];
const SDT_PACKAGE = 'systemtap-sdt-dev';

export interface UsdtFixture {
  pid: number;
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    cause: unknown,
  ) {
    super(`command failed: ${command}\n${stderr || String(cause)}`);
  }
}

function run(file: string, args: string[]): Promise<void> {
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new CommandError(command, stderr, err));
      else resolve();
    });
  });
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findInPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && (await isExecutable(join(dir, name)))) return join(dir, name);
  }
  return undefined;
}

/** mtime in ms, or undefined if the file does not exist. */
async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Runs SystemTap's `dtrace` script. It is a Python script; if its interpreter is unusable (for example a pyenv
 * shim earlier in PATH), retry with the system Python.
 */
async function dtrace(script: string, args: string[]): Promise<void> {
  try {
    await run(script, args);
  } catch (err) {
    if (!(await isExecutable('/usr/bin/python3'))) throw err;
    try {
      await run('/usr/bin/python3', [script, ...args]);
    } catch {
      throw err;
    }
  }
}

async function build(): Promise<string> {
  const newestSource = Math.max(
    ...(await Promise.all(sources.map(async (s) => (await mtime(s)) ?? Infinity))),
  );
  const built = await mtime(binPath);
  if (built !== undefined && built >= newestSource) return binPath;

  const dtraceScript = await findInPath('dtrace');
  if (dtraceScript === undefined) {
    throw new Error(
      `'dtrace' (SystemTap SDT) was not found in PATH; install the Debian package ${SDT_PACKAGE}`,
    );
  }
  // Per-process build directory, so concurrent test processes cannot clobber each other's intermediates.
  const tmp = join(outDir, `.build-${process.pid}`);
  await mkdir(tmp, { recursive: true });
  try {
    const probesD = join(srcDir, 'probes.d');
    await dtrace(dtraceScript, ['-h', '-s', probesD, '-o', join(tmp, 'probes.h')]);
    await dtrace(dtraceScript, ['-G', '-s', probesD, '-o', join(tmp, 'probes.o')]);
    const cc = process.env.CC ?? 'gcc';
    const tmpBin = join(tmp, 'h2o-usdt-fixture');
    await run(cc, [
      '-O2',
      '-g',
      `-I${tmp}`,
      join(srcDir, 'h2o-fixture.c'),
      join(srcDir, 'connect-sib.c'),
      join(requestDir, 'h2o-dispose.c'),
      join(tmp, 'probes.o'),
      '-o',
      tmpBin,
      '-lpthread',
    ]);
    await rename(tmpBin, binPath); // atomic: a concurrent reader sees the old or the new binary
    return binPath;
  } catch (err) {
    if (err instanceof CommandError && /sys\/sdt\.h/.test(err.stderr)) {
      throw new Error(`${err.message}\n<sys/sdt.h> is missing: install the Debian package ${SDT_PACKAGE}`, {
        cause: err,
      });
    }
    if (err instanceof CommandError && err.command.includes('dtrace')) {
      throw new Error(
        `${err.message}\n(dtrace comes from the Debian package ${SDT_PACKAGE} and needs python3)`,
        {
          cause: err,
        },
      );
    }
    throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

let building: Promise<string> | undefined;

/** Builds the fixture into dist/usdt-fixture/ (once per process; again only if a source is newer). */
export function buildUsdtFixture(): Promise<string> {
  building ??= build().catch((err: unknown) => {
    building = undefined; // let a later call retry
    throw err;
  });
  return building;
}

/** Starts the fixture on an ephemeral loopback port and waits for its `READY pid=… port=…` line. */
export async function startUsdtFixture(bin?: string): Promise<UsdtFixture> {
  const path = bin ?? (await buildUsdtFixture());
  const child = spawn(path, ['--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const ready = await new Promise<{ pid: number; port: number }>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.stdout.removeListener('data', onData);
      child.kill('SIGKILL');
      reject(new Error(`h2o-usdt-fixture (${path}) ${why}; stderr: ${stderr.trim() || '(empty)'}`));
    };
    const onData = (d: Buffer): void => {
      stdout += d.toString();
      const m = /^READY pid=(\d+) port=(\d+)$/m.exec(stdout);
      if (m === null) return;
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      child.removeListener('error', onError);
      resolve({ pid: Number(m[1]), port: Number(m[2]) });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`exited before READY (code ${code}, signal ${signal})`);
    const onError = (err: Error): void => fail(`could not be started: ${err.message}`);
    const timer = setTimeout(() => fail('did not print READY within 10 s'), 10_000);
    child.stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
  child.stdout.resume(); // keep draining; the fixture prints nothing else

  return {
    ...ready,
    child,
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(killer);
    },
  };
}

/** One HTTP/1.1 GET on a fresh TCP connection (agent: false), so each call is one h1_accept … h1_close. */
export function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
