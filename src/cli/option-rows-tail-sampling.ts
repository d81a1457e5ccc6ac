/** The option table's rows of tail sampling (--tail-sampling and its thresholds), in the order of --help. */
export const TAIL_SAMPLING_OPTIONS = {} as const;
