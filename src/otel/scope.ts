import { VERSION } from '../version.js';

/** Who made the spans and metrics, as the OTLP instrumentation scope says. */
export const INSTRUMENTATION_SCOPE = { name: 'h2o-otel', version: VERSION } as const;
