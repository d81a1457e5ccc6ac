/**
 * Which catalogue probes to attach, from the points the output needs and the probes an H2O build declares: a pure
 * function of both, so what is attached, and why anything is left out, can be told before touching the kernel.
 */
import { usdtProbe } from '../../events/usdt-probes.js';
import type { UsdtProbe } from '../../events/usdt-probes.js';
import type { UsdtNote } from './elf-notes.js';

export interface SelectedProbe {
  readonly probe: UsdtProbe;
  /** Its sites in the binary: H2O fires some probes from several places, each with its own argument spec. */
  readonly sites: readonly UsdtNote[];
  /**
   * The argument spec of a site that uses scale-index-base addressing (`8@0(%rbp,%rdx)`), which libbpf 1.1, like
   * every release before its 2025 fix, cannot read: if attaching fails, this is why.
   */
  readonly indexedArgs: string | undefined;
}

export interface ProbeSelection {
  /** The binary declares no `h2o` probe at all: H2O was built without DTrace. */
  readonly noH2oProbes: boolean;
  /** In the order the points asked for them, each once. */
  readonly selected: readonly SelectedProbe[];
  /** Asked for, but not in this build (older or newer than the catalogue). */
  readonly missing: readonly UsdtProbe[];
}

/**
 * `points` are `module:name` in the USDT or the socket spelling; points no probe serves (socket-only ones) are
 * ignored, and two spellings of one probe select it once. Semaphores are the kernel's business: libbpf raises them
 * while attached, so gated probes are selected like any other.
 */
export function selectProbes(notes: readonly UsdtNote[], points: readonly string[]): ProbeSelection {
  if (!notes.some((n) => n.provider === 'h2o')) return { noH2oProbes: true, selected: [], missing: [] };
  const selected: SelectedProbe[] = [];
  const missing: UsdtProbe[] = [];
  const seen = new Set<number>();
  for (const point of points) {
    const probe = usdtProbe(point);
    if (probe === undefined || seen.has(probe.id)) continue;
    seen.add(probe.id);
    const sites = notes.filter((n) => n.provider === probe.provider && n.name === probe.name);
    if (sites.length === 0) missing.push(probe);
    else selected.push({ probe, sites, indexedArgs: sites.find((s) => hasIndexedArgument(s.args))?.args });
  }
  return { noH2oProbes: false, selected, missing };
}

function hasIndexedArgument(args: string): boolean {
  return /\(%\w+,\s*%\w+/.test(args);
}
