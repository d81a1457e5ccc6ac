/**
 * What the BPF sources learn from /proc: whether this process may use BPF, which file a traced process runs, which
 * processes run a file, and whether a pid still names the same process.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { BpfError, CAPABILITY_HELP } from './errors.js';

const CAP_SYS_ADMIN = 21n;
const CAP_PERFMON = 38n;
const CAP_BPF = 39n;
/** How often a watched file is looked at again: a stat per tick would be wasted on a file that rarely changes. */
const WATCH_INTERVAL_MS = 2000;

/**
 * The BPF capabilities missing from a `/proc/PID/status` text (`CapEff`): none with CAP_SYS_ADMIN, or with both
 * CAP_BPF and CAP_PERFMON. Undefined when the text does not say.
 */
export function missingCapabilities(status: string): string[] | undefined {
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  if (m === null) return undefined;
  const eff = BigInt(`0x${m[1]}`);
  const has = (cap: bigint): boolean => ((eff >> cap) & 1n) === 1n;
  if (has(CAP_SYS_ADMIN)) return [];
  const missing: string[] = [];
  if (!has(CAP_BPF)) missing.push('CAP_BPF');
  if (!has(CAP_PERFMON)) missing.push('CAP_PERFMON');
  return missing;
}

/** Fails early, naming what to grant, when this process cannot `doing` (e.g. "attaching to USDT probes"). */
export function checkCapabilities(doing: string): void {
  let missing: string[] | undefined;
  try {
    missing = missingCapabilities(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return; // cannot tell: let the kernel decide and explain its answer
  }
  if (missing === undefined || missing.length === 0) return;
  throw new BpfError(`${doing} needs ${missing.join(' and ')}: ${CAPABILITY_HELP}`);
}

/** The tracer's PID namespace: BPF then reports pids as this process sees them (sidecars, containers). */
export function pidNamespace(): { dev: bigint; ino: bigint } | undefined {
  try {
    const st = statSync('/proc/self/ns/pid', { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat: tells a process from a later one that got the same pid. Undefined: no such pid. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * The executable of process `pid` as a path that reaches it even inside another mount namespace
 * (`/proc/PID/exe`); the errors say what stops it.
 */
export function executableOfPid(pid: number): string {
  try {
    readlinkSync(`/proc/${pid}/exe`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new BpfError(
        `no process with pid ${pid} here: is H2O running, and in this PID namespace? (a sidecar needs ` +
          '`shareProcessNamespace: true` in the pod spec)',
      );
    if (code === 'EACCES' || code === 'EPERM')
      throw new BpfError(
        `cannot read /proc/${pid}/exe: permission denied; tracing a process of another user or container ` +
          'needs CAP_SYS_PTRACE (or root)',
      );
    throw new BpfError(`cannot inspect pid ${pid}: ${(err as Error).message}`);
  }
  return `/proc/${pid}/exe`;
}

/** `dev:ino` of the executable at `path` (`--binary`): uprobes belong to the file, not to its name. */
export function executableFileId(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new BpfError(
      `--binary ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  if (!st.isFile()) throw new BpfError(`--binary ${path}: not a file; give the path of the h2o executable`);
  return `${st.dev}:${st.ino}`;
}

/** `/proc/PID/exe` as `target (/proc/PID/exe)`, for messages; other paths as they are. */
export function describeExecutable(path: string): string {
  if (!path.startsWith('/proc/')) return path;
  try {
    return `${readlinkSync(path)} (${path})`;
  } catch {
    return path;
  }
}

/** Pids of the running processes whose executable is the file `dev:ino`. */
export function processesRunning(fileId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const st = statSync(`/proc/${entry}/exe`);
      if (`${st.dev}:${st.ino}` === fileId) pids.push(Number(entry));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

/**
 * Notices when the file at a path is replaced (a new inode, as an upgrade does): uprobes stay on the old file, so
 * new processes would go untraced.
 */
export class ReplacedFileWatch {
  private _lastLook = 0;

  constructor(
    readonly path: string,
    private _fileId: string,
  ) {}

  /** `dev:ino` of the file now at the path, as last seen. */
  get fileId(): string {
    return this._fileId;
  }

  /** True once per replacement; looks at most every 2 s. */
  replaced(nowMs: number): boolean {
    if (nowMs - this._lastLook < WATCH_INTERVAL_MS) return false;
    this._lastLook = nowMs;
    let id: string;
    try {
      const st = statSync(this.path);
      id = `${st.dev}:${st.ino}`;
    } catch {
      return false; // mid-replacement; look again later
    }
    if (id === this._fileId) return false;
    this._fileId = id;
    return true;
  }
}
