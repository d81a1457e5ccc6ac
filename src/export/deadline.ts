/**
 * `work`, or `ms` passing, whichever comes first; true if the work finished. The timer keeps the process alive
 * until then (against a dead collector it is all a flush waits on) and is cleared as soon as the work is done.
 */
export async function withinMs(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  try {
    await Promise.race([
      work.then(() => (finished = true)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return finished;
}
