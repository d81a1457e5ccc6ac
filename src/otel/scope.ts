/** Who made the spans and metrics, as the OTLP instrumentation scope says. */
export const INSTRUMENTATION_SCOPE = { name: 'h2o-otel', version: '0.1.0' } as const;
