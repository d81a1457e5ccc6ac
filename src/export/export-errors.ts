/**
 * Which export failures mean "the collector is away, wait for it" and which mean "it refused this batch".
 * The OTLP specification's lists: gRPC CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE,
 * UNAVAILABLE and DATA_LOSS, HTTP 429, 502, 503 and 504 are retryable (and 408, a request timeout, since nothing
 * was refused); other statuses are not. An error without
 * a status (connection refused or reset, a timeout, DNS) means the endpoint cannot be reached: retryable too.
 */

const RETRYABLE_GRPC = new Set([1, 4, 8, 10, 11, 14, 15]);
const RETRYABLE_HTTP = new Set([408, 429, 502, 503, 504]);

/** gRPC's UNAVAILABLE: the channel has no connection (and grpc-js then backs off reconnecting). */
export const GRPC_UNAVAILABLE = 14;

/** The status an OTLP exporter put on its error: a gRPC code (0–16) or an HTTP status; undefined for none. */
export function exportErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && Number.isInteger(code) ? code : undefined;
}

export function isRetryableExportError(err: unknown): boolean {
  const status = exportErrorStatus(err);
  if (status === undefined) return true;
  return status < 100 ? RETRYABLE_GRPC.has(status) : RETRYABLE_HTTP.has(status);
}
