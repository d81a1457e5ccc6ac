/**
 * All of h2o-otel's metrics on one MeterProvider — its own counters (self-metrics.ts, registered by the CLI) and
 * the RED metrics the pipeline records (otel/red-metrics.ts) — read by the OTLP exporter (h2o-otel's encoder, which adds exemplars)
 * and/or served in the Prometheus text format by the SDK's Prometheus exporter.
 */
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { MetricReader } from '@opentelemetry/sdk-metrics';
import { RedMetrics } from '../otel/red-metrics.js';
import { INSTRUMENTATION_SCOPE } from '../otel/scope.js';
import { withinMs } from './deadline.js';
import type { OtlpOptions } from './otlp.js';
import { createOtlpMetricExporter } from './otlp.js';

export interface MetricsOptions {
  readonly resource: Resource;
  /** Export over OTLP every `intervalMs`. */
  readonly otlp?: OtlpOptions & { readonly intervalMs: number };
  /** Serve `GET /metrics` on this address. */
  readonly prometheus?: { readonly host: string; readonly port: number };
}

/** The Prometheus endpoint could not be served (its port taken, its address not local). */
export class MetricsStartError extends Error {}

export class Metrics {
  readonly meter: Meter;
  /** The RED histograms, which the pipeline records into and both readers collect. */
  readonly red: RedMetrics;
  private readonly _provider: MeterProvider;

  private constructor(
    o: MetricsOptions,
    red: RedMetrics,
    private readonly _prometheus: PrometheusExporter | undefined,
  ) {
    this.red = red;
    const readers: MetricReader[] = [];
    if (o.otlp !== undefined) {
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: createOtlpMetricExporter(o.otlp),
          exportIntervalMillis: o.otlp.intervalMs,
          exportTimeoutMillis: Math.min(o.otlp.intervalMs, 30_000),
          // Only this reader takes the exemplars: the Prometheus text format has no place for them.
          metricProducers: [red.producer(true)],
        }),
      );
    }
    if (_prometheus !== undefined) readers.push(_prometheus);
    this._provider = new MeterProvider({ resource: o.resource, readers });
    this.meter = this._provider.getMeter(INSTRUMENTATION_SCOPE.name, INSTRUMENTATION_SCOPE.version);
  }

  /** Serves Prometheus (if asked) before anything is recorded; throws MetricsStartError when it cannot. */
  static async start(o: MetricsOptions): Promise<Metrics> {
    const red = new RedMetrics(o.resource, INSTRUMENTATION_SCOPE);
    let prometheus: PrometheusExporter | undefined;
    if (o.prometheus !== undefined) {
      const { host, port } = o.prometheus;
      prometheus = new PrometheusExporter({
        host,
        port,
        endpoint: '/metrics',
        preventServerStart: true,
        metricProducers: [red.producer(false)],
      });
      try {
        await prometheus.startServer();
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new MetricsStartError(
          `cannot serve Prometheus metrics on ${host}:${port} (${why}): choose another --prometheus-port or --prometheus-host`,
        );
      }
    }
    return new Metrics(o, red, prometheus);
  }

  /** Export the final values, stop serving; never longer than `timeoutMs`. */
  async shutdown(timeoutMs: number): Promise<void> {
    await withinMs(
      this._provider.shutdown().catch(() => undefined),
      timeoutMs,
    );
    await this._prometheus?.stopServer();
  }
}
