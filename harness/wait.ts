/** Poll `cond` until it holds; fail with `what` (and what was seen) after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 10_000,
  seen: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${seen()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * BPF tests need root (or CAP_BPF + CAP_PERFMON) and a kernel with uprobes. They fail when those are missing, so a
 * broken CI machine is noticed; `H2O_OTEL_SKIP_BPF_TESTS=1` skips them on purpose.
 */
export const skipBpf: string | false =
  process.env.H2O_OTEL_SKIP_BPF_TESTS === '1' ? 'H2O_OTEL_SKIP_BPF_TESTS=1 is set' : false;
