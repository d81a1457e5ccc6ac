/**
 * Finds the DWARF that describes a binary's structs, so their layouts can be read by field name: the binary itself
 * when it was built with debug info (H2O source builds are), else a file given by the user, else the separate debug
 * file a distribution installs under the binary's build-id (`-dbgsym` / `-debuginfo` packages), else its
 * `.gnu_debuglink` name in the places gdb looks.
 */
import { existsSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BpfError } from '../bpf/errors.js';
import { readBuildId, readElfSections, SHT_NOBITS } from '../usdt/elf-notes.js';

export interface DebugInfo {
  /** The ELF file whose `.debug_info` describes the binary. */
  readonly path: string;
  /** The binary's build-id in hex, when it has one: the BTF cache key. */
  readonly buildId: string | undefined;
  readonly from: 'binary' | 'debug-file' | 'build-id' | 'debuglink';
}

export interface DebugInfoOptions {
  /** `--debug-file PATH`: the user's separate debug file for this binary. */
  readonly debugFile?: string;
  /** Where separate debug files live; `/usr/lib/debug` unless a test says otherwise. */
  readonly debugRoot?: string;
}

const DEFAULT_DEBUG_ROOT = '/usr/lib/debug';

export function findDebugInfo(binary: string, options: DebugInfoOptions = {}): DebugInfo {
  const sections = readElfSections(binary, ['.gnu_debuglink']);
  const buildId = readBuildId(binary);
  if (options.debugFile !== undefined) {
    const file = options.debugFile;
    if (!hasDwarf(file)) throw new BpfError(`--debug-file ${file} has no DWARF (.debug_info section)`);
    const fileId = readBuildId(file);
    if (buildId !== undefined && fileId !== undefined && fileId !== buildId) {
      throw new BpfError(
        `--debug-file ${file} belongs to another build (build-id ${fileId}; ${binary} has ${buildId})`,
      );
    }
    return { path: file, buildId, from: 'debug-file' };
  }
  if (hasDebugInfoSection(sections)) return { path: binary, buildId, from: 'binary' };
  const { file, root: fsRoot } = whereItLives(binary);
  // The process's own filesystem first (a sidecar sees H2O's container through /proc/PID/root), then ours.
  const roots = [
    ...new Set([
      join(fsRoot, options.debugRoot ?? DEFAULT_DEBUG_ROOT),
      options.debugRoot ?? DEFAULT_DEBUG_ROOT,
    ]),
  ];
  const tried: string[] = [];
  if (buildId !== undefined && buildId.length > 2) {
    for (const root of roots) {
      const path = join(root, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`);
      tried.push(path);
      if (existsSync(path) && hasDwarf(path)) return { path, buildId, from: 'build-id' };
    }
  }
  const link = debuglinkName(sections.get('.gnu_debuglink')?.data);
  if (link !== undefined) {
    const dir = dirname(file);
    const candidates = [
      join(fsRoot, dir, link),
      join(fsRoot, dir, '.debug', link),
      ...roots.map((r) => join(r, dir, link)),
    ];
    for (const path of new Set(candidates)) {
      if (path === binary || path === join(fsRoot, file)) continue;
      tried.push(path);
      if (existsSync(path) && hasDwarf(path)) return { path, buildId, from: 'debuglink' };
    }
  }
  throw new BpfError(
    `${binary} has no debug info, which the request probe needs to find H2O's struct fields` +
      (tried.length > 0
        ? ` (looked in ${tried.join(', ')})`
        : buildId === undefined
          ? ' (and no build-id)'
          : '') +
      ': install its debug symbols (on Debian/Ubuntu the `-dbgsym` package, e.g. `apt-get install h2o-dbgsym` ' +
      'from the debian-debug archive), or pass --debug-file PATH, or build H2O with debug info ' +
      '(cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo); or use --bpf usdt with an H2O built with DTrace',
  );
}

/**
 * `--pid` gives `/proc/PID/exe`: the executable's own path (for `.gnu_debuglink`, which names a file beside it) and
 * the root of the process's filesystem, where its distribution's debug files are. Any other path: itself, in ours.
 */
function whereItLives(binary: string): { file: string; root: string } {
  const m = /^\/proc\/(\d+)\/exe$/.exec(binary);
  if (m === null) return { file: binary, root: '/' };
  try {
    return { file: readlinkSync(binary).replace(/ \(deleted\)$/, ''), root: `/proc/${m[1]}/root` };
  } catch {
    return { file: binary, root: '/' };
  }
}

function hasDebugInfoSection(sections: Map<string, { type: number; size: number }>): boolean {
  const s = sections.get('.debug_info');
  return s !== undefined && s.type !== SHT_NOBITS && s.size > 0;
}

function hasDwarf(path: string): boolean {
  try {
    return hasDebugInfoSection(readElfSections(path));
  } catch (err) {
    throw new BpfError(`cannot read debug file ${path}: ${(err as Error).message}`);
  }
}

/** The file name in `.gnu_debuglink` (a NUL-terminated name, padding, then a CRC32). */
function debuglinkName(data: Buffer | undefined): string | undefined {
  if (data === undefined) return undefined;
  const end = data.indexOf(0);
  return end <= 0 ? undefined : data.toString('utf8', 0, end);
}
