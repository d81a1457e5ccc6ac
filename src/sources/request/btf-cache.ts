/**
 * Turns a binary's DWARF into a BTF file with pahole (much smaller and far simpler to read than DWARF), once per
 * build: the result is cached under the build-id, so a restart or a second h2o-otel on the same H2O reuses it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
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

/**
 * The BTF of `debug`'s build, made once. The layout it gives decides which bytes of H2O's memory a privileged
 * program reads and exports, so a cached file is used only if this user made it: the directory is created 0700,
 * and a file that someone else owns or may write is made again.
 */
export async function btfFor(debug: DebugInfo, options: BtfCacheOptions): Promise<CachedBtf> {
  const key = debug.buildId ?? `sha256-${await fileSha256(debug.path)}`;
  const path = join(options.cacheDir, `${key}.btf`);
  if (trusted(path)) return { path, reused: true };
  mkdirSync(options.cacheDir, { recursive: true, mode: 0o700 });
  // pahole writes in place; a crash or a concurrent h2o-otel must never leave a half file under the final name,
  // and no one else may have put a file where it writes: a fresh private directory per run.
  const tmpDir = mkdtempSync(join(options.cacheDir, '.tmp-'));
  const tmp = join(tmpDir, `${key}.btf`);
  try {
    await runPahole(options.pahole ?? 'pahole', tmp, debug.path);
    if (!existsSync(tmp) || statSync(tmp).size === 0) {
      throw new BpfError(`pahole found no types in ${debug.path} (is its DWARF complete?)`);
    }
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return { path, reused: false };
}

/** A non-empty regular file of this user that no one else may write. */
function trusted(path: string): boolean {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return false;
  }
  const uid = process.geteuid?.();
  return st.isFile() && st.size > 0 && (uid === undefined || st.uid === uid) && (st.mode & 0o022) === 0;
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
