/** How long the flush at exit may take. */
export type FlushBound =
  /** After SIGINT/SIGTERM: a fixed deadline (epoch ms). Kubernetes kills at the end of its grace period. */
  | { readonly deadlineAt: number }
  /** The source ended by itself: as long as `progress()` moves, until it has not for `stallMs`. */
  | { readonly stallMs: number; readonly progress: () => number };

const CHECK_MS = 100;

/**
 * Wait for `work` within `bound`; true if it finished. A replay's backlog may take long to a slow collector and
 * should all arrive, but a dead collector must not keep h2o-otel from exiting.
 */
export async function flushWithin(work: Promise<void>, bound: FlushBound): Promise<boolean> {
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    if ('deadlineAt' in bound) {
      timer = setTimeout(resolve, Math.max(0, bound.deadlineAt - Date.now()));
      return;
    }
    let last = bound.progress();
    let lastMovedAt = Date.now();
    timer = setInterval(() => {
      const now = bound.progress();
      if (now !== last) {
        last = now;
        lastMovedAt = Date.now();
      } else if (Date.now() - lastMovedAt >= bound.stallMs) resolve();
    }, CHECK_MS);
  });
  try {
    await Promise.race([work.then(() => (finished = true)), expired]);
  } finally {
    clearTimeout(timer);
    clearInterval(timer);
  }
  return finished;
}
