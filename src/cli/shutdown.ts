/**
 * How long the flush at exit may take: after SIGINT/SIGTERM, until a fixed deadline (Kubernetes kills at the end
 * of its grace period); when the source ended by itself, for as long as exports progress — a replay's backlog may
 * take long to a slow collector and should all arrive, but a dead collector must not keep h2o-otel from exiting.
 * A signal during that flush brings the deadline in.
 */
export interface FlushBound {
  /** Epoch ms by which to be done, once a signal came; undefined before. */
  deadlineAt(): number | undefined;
  /** Without a deadline: give up once `progress()` has not moved for this long. */
  readonly stallMs: number;
  progress(): number;
}

const CHECK_MS = 100;

/** Wait for `work` within `bound`; true if it finished. */
export async function flushWithin(work: Promise<void>, bound: FlushBound): Promise<boolean> {
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    let last = bound.progress();
    let movedAt = Date.now();
    const check = (): void => {
      const now = Date.now();
      const deadline = bound.deadlineAt();
      if (deadline !== undefined) {
        if (now >= deadline) return resolve();
      } else if (bound.progress() !== last) {
        last = bound.progress();
        movedAt = now;
      } else if (now - movedAt >= bound.stallMs) {
        return resolve();
      }
      timer = setTimeout(check, deadline === undefined ? CHECK_MS : Math.min(CHECK_MS, deadline - now));
    };
    check();
  });
  try {
    await Promise.race([work.then(() => (finished = true)), expired]);
  } finally {
    clearTimeout(timer);
  }
  return finished;
}
