/**
 * Turns a binary's DWARF into a BTF file with pahole (much smaller and far simpler to read than DWARF), once per
 * build: the result is cached under the build-id, so a restart or a second h2o-otel on the same H2O reuses it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BpfError } from '../bpf/errors.js';
import type { DebugInfo } from './debug-info.js';

export interface BtfCacheOptions {
  /** Directory of `<build-id>.btf` files; see defaultBtfCacheDir. */
  readonly cacheDir: string;
  /** The pahole command (a test may substitute a wrapper). */
  readonly pahole?: string;
}

export interface CachedBtf {
  readonly path: string;
  /** True when the file was already there and pahole did not run. */
  readonly reused: boolean;
}

/** `${XDG_CACHE_HOME:-~/.cache}/h2o-otel/btf`; the caller passes the environment in. */
export function defaultBtfCacheDir(env: Readonly<Record<string, string | undefined>>, home: string): string {
  const base =
    env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(base, 'h2o-otel', 'btf');
}

export async function btfFor(debug: DebugInfo, options: BtfCacheOptions): Promise<CachedBtf> {
  const key = debug.buildId ?? `sha256-${await fileSha256(debug.path)}`;
  const path = join(options.cacheDir, `${key}.btf`);
  if (existsSync(path) && statSync(path).size > 0) return { path, reused: true };
  mkdirSync(options.cacheDir, { recursive: true });
  // pahole writes in place; a crash or a concurrent h2o-otel must never leave a half file under the final name.
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await runPahole(options.pahole ?? 'pahole', tmp, debug.path);
    if (!existsSync(tmp) || statSync(tmp).size === 0) {
      throw new BpfError(`pahole found no types in ${debug.path} (is its DWARF complete?)`);
    }
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { path, reused: false };
}

function runPahole(pahole: string, out: string, debugFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      pahole,
      // C units only: H2O links some C++ (2.2.5: fourteen C++14 units) whose DWARF pahole cannot encode as BTF
      // (1.24 stops at GNU_formal_parameter_pack), and every struct the probe reads is C.
      ['--lang=c,c89,c99,c11', `--btf_encode_detached=${out}`, debugFile],
      { maxBuffer: 1 << 20 },
      (err, _stdout, stderr) => {
        if (err === null) return resolve();
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(
            new BpfError(
              `${pahole} not found: the request probe needs pahole to read H2O's struct layouts from its debug ` +
                'info; install it with `apt-get install dwarves` (Debian/Ubuntu) or `dnf install dwarves`',
            ),
          );
        }
        const detail = stderr.trim().split('\n').slice(-3).join(' / ') || err.message;
        reject(new BpfError(`pahole could not turn the debug info of ${debugFile} into BTF: ${detail}`));
      },
    );
  });
}

function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
