/** The option table's rows of RED metrics and the Prometheus endpoint, in the order of --help. */
import { value } from './option-spec.js';
import { tcpPort } from './parsers.js';

export const METRICS_OPTIONS = {
  prometheusPort: value({
    flag: '--prometheus-port <port>',
    env: ['H2O_OTEL_PROMETHEUS_PORT', 'OTEL_EXPORTER_PROMETHEUS_PORT'],
    help: "serve the RED metrics and h2o-otel's own counters at GET /metrics in the Prometheus text format on this TCP port (default: off)",
    parse: tcpPort,
  }),
  prometheusHost: value({
    flag: '--prometheus-host <addr>',
    env: ['OTEL_EXPORTER_PROMETHEUS_HOST'],
    help: "the Prometheus port's address; the default (every address) lets a scraper reach it on the pod IP",
    parse: (raw) => raw.trim(),
    default: '0.0.0.0',
  }),
} as const;
