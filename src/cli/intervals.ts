/** Fixed intervals of the CLI's lifecycle: not options. */

/** How often H2O's status handler is read (`--h2o-status`): one small request. */
export const H2O_STATUS_INTERVAL_MS = 5_000;
/** Past the shutdown deadline, the process is gone this much later whatever still runs (the summary printed). */
export const HARD_EXIT_GRACE_MS = 1_500;
/** Live sources: how often the correlators' clocks advance while H2O is quiet, so deadlines still fire. */
export const TICK_MS = 250;
/** With --status-interval 0, notices (losses, misconfiguration) are still checked this often. */
export const NOTICE_INTERVAL_MS = 1_000;
/** `--socket`: reconnecting to H2O backs off from this to the maximum, doubling (with jitter). */
export const RECONNECT_MIN_BACKOFF_MS = 250;
export const RECONNECT_MAX_BACKOFF_MS = 10_000;
