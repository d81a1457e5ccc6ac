/** The option table's rows of RED metrics and the Prometheus endpoint, in the order of --help. */
export const METRICS_OPTIONS = {} as const;
