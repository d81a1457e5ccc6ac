// A real OTLP/gRPC + OTLP/HTTP (protobuf) receiver for tests and the benchmark. It decodes the bytes h2o-otel's
// exporters put on the wire with the official .proto files in test/fixtures/otlp-proto, so tests exercise the actual
// serialization instead of a mock. It understands what h2o-otel sends: spans, and its counters (OTLP sums).
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export type OtlpValue = string | number | boolean | bigint | null | OtlpValue[];

export type OtlpAttributes = Record<string, OtlpValue>;

export interface ReceivedSpan {
  /** Lower-case hex. */
  traceId: string;
  spanId: string;
  /** '' for root spans. */
  parentSpanId: string;
  traceState: string;
  /** W3C trace flags in the low byte; bits 8-9 carry the "parent is remote" information. */
  flags: number;
  name: string;
  /** OTLP SpanKind: 0 UNSPECIFIED, 1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: OtlpAttributes;
  events: { name: string; timeUnixNano: bigint; attributes: OtlpAttributes }[];
  links: { traceId: string; spanId: string; traceState: string; attributes: OtlpAttributes }[];
  /** OTLP StatusCode: 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message: string };
  droppedAttributesCount: number;
  droppedEventsCount: number;
  droppedLinksCount: number;
  resource: OtlpAttributes;
  scope: { name: string; version: string };
}

/** One data point of a cumulative sum (h2o-otel's self-metrics are observable counters). */
export interface ReceivedMetricPoint {
  name: string;
  description: string;
  unit: string;
  /** Other kinds are not decoded (h2o-otel sends none). */
  kind: 'sum';
  monotonic: boolean;
  /** asInt as number when safe, else bigint; asDouble as number. */
  value: number | bigint;
  attributes: OtlpAttributes;
  timeUnixNano: bigint;
  resource: OtlpAttributes;
  scope: { name: string; version: string };
}

/** One data point of an explicit-bucket histogram (the RED metrics), with its exemplars. */
export interface ReceivedHistogramPoint {
  name: string;
  unit: string;
  attributes: OtlpAttributes;
  count: number;
  sum: number;
  bucketCounts: number[];
  explicitBounds: number[];
  exemplars: { value: number; timeUnixNano: bigint; traceId: string; spanId: string }[];
  timeUnixNano: bigint;
  /** 2: cumulative. */
  temporality: number;
}

export interface ReceivedRequest {
  /** Which OTLP service was called. */
  kind: 'traces' | 'metrics';
  transport: 'grpc' | 'http';
  /** Lower-case header / metadata names. */
  headers: Record<string, string>;
  /** 0 for metric exports. */
  spanCount: number;
  /** Metric data points in the request; 0 for trace exports. */
  pointCount: number;
}

export interface OtlpReceiver {
  /** e.g. http://127.0.0.1:PORT — pass as the gRPC exporter's `url`. */
  readonly grpcUrl: string;
  /**
   * Base URL without path, e.g. http://127.0.0.1:PORT; HTTP exporters need `${httpUrl}/v1/traces`
   * or `${httpUrl}/v1/metrics`.
   */
  readonly httpUrl: string;
  /** Spans in arrival order (both transports). */
  readonly spans: ReceivedSpan[];
  /** Sum data points in arrival order (both transports). */
  readonly metrics: ReceivedMetricPoint[];
  /** Histogram data points in arrival order (both transports). */
  readonly histograms: ReceivedHistogramPoint[];
  /** Every export call of either signal. */
  readonly requests: ReceivedRequest[];
  /** Resolves with all spans once at least n arrived; rejects after timeoutMs (default 10 s). */
  waitForSpans(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /**
   * Resolves once a point named `name` satisfying `pred` arrived; rejects after timeoutMs (default 10 s)
   * listing the metric names seen. A throwing `pred` rejects the wait with that error.
   */
  waitForMetric(
    name: string,
    pred?: (p: ReceivedMetricPoint) => boolean,
    timeoutMs?: number,
  ): Promise<ReceivedMetricPoint>;
  /** Resolves once a histogram point named `name` satisfying `pred` arrived; rejects after timeoutMs (default 10 s). */
  waitForHistogram(
    name: string,
    pred?: (p: ReceivedHistogramPoint) => boolean,
    timeoutMs?: number,
  ): Promise<ReceivedHistogramPoint>;
  /**
   * How export calls are answered from now on: accepted ('none', the default), refused as the collector's
   * overload answer ('unavailable': gRPC UNAVAILABLE, HTTP 503), refused for good ('reject': gRPC
   * INVALID_ARGUMENT, HTTP 400), or never answered ('hang'). Only accepted calls
   * are recorded in `requests`; the others are counted in `refused` and `hung`.
   */
  failWith(mode: ReceiverFailure): void;
  /** Calls answered with a failure, and calls left hanging, so far. */
  readonly failures: { refused: number; hung: number };
  /** The collector goes away: both listeners close and their connections are cut, so connecting is refused. */
  stop(): Promise<void>;
  /** It comes back on the same ports. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export type ReceiverFailure = 'none' | 'unavailable' | 'reject' | 'hang';

type Signal = ReceivedRequest['kind'];

// Both transports route by signal: the gRPC method path and the OTLP/HTTP default path.
const ROUTES: Record<Signal, { grpcPath: string; httpPath: string }> = {
  traces: { grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', httpPath: '/v1/traces' },
  metrics: {
    grpcPath: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    httpPath: '/v1/metrics',
  },
};

// Shapes produced by Type.toObject with the options below (defaults, arrays, oneofs, BigInt longs).
interface RawAnyValue {
  value?: 'stringValue' | 'boolValue' | 'intValue' | 'doubleValue' | 'arrayValue';
  stringValue?: string;
  boolValue?: boolean;
  intValue?: bigint;
  doubleValue?: number;
  arrayValue?: { values: RawAnyValue[] };
}
interface RawKeyValue {
  key: string;
  value: RawAnyValue | null;
}
interface RawSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  traceState: string;
  flags: number;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: RawKeyValue[];
  droppedAttributesCount: number;
  events: { name: string; timeUnixNano: bigint; attributes: RawKeyValue[] }[];
  droppedEventsCount: number;
  links: { traceId: Uint8Array; spanId: Uint8Array; traceState: string; attributes: RawKeyValue[] }[];
  droppedLinksCount: number;
  status: { code: number; message: string } | null;
}
interface RawExportTraceRequest {
  resourceSpans: {
    resource: { attributes: RawKeyValue[] } | null;
    scopeSpans: { scope: { name: string; version: string } | null; spans: RawSpan[] }[];
  }[];
}
interface RawNumberDataPoint {
  attributes: RawKeyValue[];
  timeUnixNano: bigint;
  value?: 'asDouble' | 'asInt';
  asDouble?: number;
  asInt?: bigint;
}
interface RawMetric {
  name: string;
  description: string;
  unit: string;
  data?: string;
  sum?: { dataPoints: RawNumberDataPoint[]; isMonotonic: boolean };
  histogram?: { dataPoints: RawHistogramDataPoint[]; aggregationTemporality: number };
}
interface RawHistogramDataPoint {
  attributes: RawKeyValue[];
  timeUnixNano: bigint;
  count: bigint;
  sum: number;
  bucketCounts: bigint[];
  explicitBounds: number[];
  exemplars: { timeUnixNano: bigint; asDouble?: number; spanId: Uint8Array; traceId: Uint8Array }[];
}
interface RawExportMetricsRequest {
  resourceMetrics: {
    resource: { attributes: RawKeyValue[] } | null;
    scopeMetrics: { scope: { name: string; version: string } | null; metrics: RawMetric[] }[];
  }[];
}

const CONVERSION: protobuf.IConversionOptions = {
  longs: BigInt,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/** Walks up from this (possibly compiled, under dist/) file until the checked-in fixtures are found. */
function findProtoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test', 'fixtures', 'otlp-proto');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('otlp-receiver: cannot find test/fixtures/otlp-proto above ' + import.meta.url);
    dir = parent;
  }
}

interface Codec {
  decodeTraces: (bytes: Uint8Array) => RawExportTraceRequest;
  decodeMetrics: (bytes: Uint8Array) => RawExportMetricsRequest;
  emptyResponses: Record<Signal, Buffer>;
}

let codec: Codec | undefined;
function getCodec(): Codec {
  if (codec) return codec;
  const protoRoot = findProtoRoot();
  const root = new protobuf.Root();
  // The .proto imports are relative to the include root ("opentelemetry/proto/..."), like protoc -I.
  root.resolvePath = (_origin, target) => join(protoRoot, target);
  root.loadSync(
    [
      'opentelemetry/proto/collector/trace/v1/trace_service.proto',
      'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    ],
    { keepCase: false },
  );
  const type = (name: string) => root.lookupType(`opentelemetry.proto.collector.${name}`);
  const decoder =
    <T>(requestType: protobuf.Type) =>
    (bytes: Uint8Array) =>
      requestType.toObject(requestType.decode(bytes), CONVERSION) as unknown as T;
  const empty = (responseType: protobuf.Type) =>
    Buffer.from(responseType.encode(responseType.create({})).finish());
  codec = {
    decodeTraces: decoder<RawExportTraceRequest>(type('trace.v1.ExportTraceServiceRequest')),
    decodeMetrics: decoder<RawExportMetricsRequest>(type('metrics.v1.ExportMetricsServiceRequest')),
    emptyResponses: {
      traces: empty(type('trace.v1.ExportTraceServiceResponse')),
      metrics: empty(type('metrics.v1.ExportMetricsServiceResponse')),
    },
  };
  return codec;
}

/** An ExportMetricsServiceRequest as the official .proto files decode it (every default filled in). */
export function decodeMetricsRequest(bytes: Uint8Array): unknown {
  return getCodec().decodeMetrics(bytes);
}

/** An ExportTraceServiceRequest as the official .proto files decode it (every default filled in), for comparisons. */
export function decodeTraceRequest(bytes: Uint8Array): unknown {
  return getCodec().decodeTraces(bytes);
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Numbers are friendlier in assertions; only fall back to bigint when precision would be lost. */
const safeInt = (n: bigint): number | bigint =>
  n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;

function toValue(v: RawAnyValue | null): OtlpValue {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue':
      return safeInt(v.intValue ?? 0n);
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'arrayValue':
      return (v.arrayValue?.values ?? []).map(toValue);
    default:
      // Kinds h2o-otel never sends (maps, bytes) show as null, so an assertion on them fails.
      return null;
  }
}

function toAttributes(kvs: RawKeyValue[]): OtlpAttributes {
  const out: OtlpAttributes = {};
  for (const kv of kvs) out[kv.key] = toValue(kv.value);
  return out;
}

function toSpans(req: RawExportTraceRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans) {
    const resource = toAttributes(rs.resource?.attributes ?? []);
    for (const ss of rs.scopeSpans) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const s of ss.spans) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          traceState: s.traceState,
          flags: s.flags,
          name: s.name,
          kind: s.kind,
          startTimeUnixNano: s.startTimeUnixNano,
          endTimeUnixNano: s.endTimeUnixNano,
          attributes: toAttributes(s.attributes),
          events: s.events.map((e) => ({
            name: e.name,
            timeUnixNano: e.timeUnixNano,
            attributes: toAttributes(e.attributes),
          })),
          links: s.links.map((l) => ({
            traceId: hex(l.traceId),
            spanId: hex(l.spanId),
            traceState: l.traceState,
            attributes: toAttributes(l.attributes),
          })),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          droppedAttributesCount: s.droppedAttributesCount,
          droppedEventsCount: s.droppedEventsCount,
          droppedLinksCount: s.droppedLinksCount,
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

function toHistogramPoints(req: RawExportMetricsRequest): ReceivedHistogramPoint[] {
  const out: ReceivedHistogramPoint[] = [];
  for (const rm of req.resourceMetrics)
    for (const sm of rm.scopeMetrics)
      for (const m of sm.metrics) {
        if (m.data !== 'histogram') continue;
        for (const p of m.histogram?.dataPoints ?? []) {
          out.push({
            name: m.name,
            unit: m.unit,
            attributes: toAttributes(p.attributes),
            count: Number(p.count),
            sum: p.sum,
            bucketCounts: p.bucketCounts.map(Number),
            explicitBounds: p.explicitBounds,
            exemplars: p.exemplars.map((e) => ({
              value: e.asDouble ?? NaN,
              timeUnixNano: e.timeUnixNano,
              traceId: hex(e.traceId),
              spanId: hex(e.spanId),
            })),
            timeUnixNano: p.timeUnixNano,
            temporality: m.histogram?.aggregationTemporality ?? 0,
          });
        }
      }
  return out;
}

/** One entry per sum data point; a metric of another kind (but histograms) is named in `skipped` for the wait's message. */
function toMetricPoints(req: RawExportMetricsRequest, skipped: string[]): ReceivedMetricPoint[] {
  const out: ReceivedMetricPoint[] = [];
  for (const rm of req.resourceMetrics) {
    const resource = toAttributes(rm.resource?.attributes ?? []);
    for (const sm of rm.scopeMetrics) {
      const scope = { name: sm.scope?.name ?? '', version: sm.scope?.version ?? '' };
      for (const m of sm.metrics) {
        if (m.data === 'histogram') continue;
        if (m.data !== 'sum') {
          skipped.push(`${m.name} (${m.data ?? 'no data'})`);
          continue;
        }
        for (const p of m.sum?.dataPoints ?? []) {
          out.push({
            name: m.name,
            description: m.description,
            unit: m.unit,
            kind: 'sum',
            monotonic: m.sum?.isMonotonic ?? false,
            value: p.value === 'asInt' ? safeInt(p.asInt ?? 0n) : (p.asDouble ?? NaN),
            attributes: toAttributes(p.attributes),
            timeUnixNano: p.timeUnixNano,
            resource,
            scope,
          });
        }
      }
    }
  }
  return out;
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * `host`: the address both transports listen on (default loopback); `0.0.0.0` lets containers reach it on their
 * gateway address. The URLs given back always say 127.0.0.1.
 */
export async function startOtlpReceiver(host = '127.0.0.1'): Promise<OtlpReceiver> {
  const { decodeTraces, decodeMetrics, emptyResponses } = getCodec();
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetricPoint[] = [];
  const histograms: ReceivedHistogramPoint[] = [];
  const requests: ReceivedRequest[] = [];
  // Decode failures would otherwise only surface as a wait timeout; keep them for its message.
  const errors: string[] = [];
  // Metric kinds this receiver cannot represent, likewise reported by waitForMetric on timeout.
  const skipped: string[] = [];
  const waiters = new Set<() => void>();

  /** Shared by both transports and signals; throws on a body that does not decode. */
  const ingest = (
    kind: Signal,
    transport: ReceivedRequest['transport'],
    headers: Record<string, string>,
    body: Uint8Array,
  ) => {
    const received =
      kind === 'traces'
        ? { spans: toSpans(decodeTraces(body)), points: [], histograms: [] }
        : (() => {
            const raw = decodeMetrics(body);
            return { spans: [], points: toMetricPoints(raw, skipped), histograms: toHistogramPoints(raw) };
          })();
    requests.push({
      kind,
      transport,
      headers,
      spanCount: received.spans.length,
      pointCount: received.points.length + received.histograms.length,
    });
    spans.push(...received.spans);
    metrics.push(...received.points);
    histograms.push(...received.histograms);
    for (const wake of [...waiters]) wake();
  };

  /** Settles with check()'s first non-undefined result, re-checked after every export. */
  const waitUntil = <T>(check: () => T | undefined, timeoutMs: number, describe: () => string) =>
    new Promise<T>((resolve, reject) => {
      const wake = () => {
        let result: T | undefined;
        try {
          result = check();
        } catch (err) {
          // A throwing predicate must fail the wait, not the export request that woke it.
          cleanup();
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        if (result === undefined) return;
        cleanup();
        resolve(result);
      };
      const timer = setTimeout(() => {
        cleanup();
        const errs = errors.length ? `; receiver errors: ${errors.join(' | ')}` : '';
        reject(new Error(`otlp-receiver: ${describe()}${errs}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(wake);
      };
      waiters.add(wake);
      wake();
    });

  const requestCount = (kind: Signal) => requests.filter((r) => r.kind === kind).length;

  let failure: ReceiverFailure = 'none';
  const failures = { refused: 0, hung: 0 };

  // --- gRPC ---
  const identity = (b: Buffer): Buffer => b;
  const grpcExportHandler =
    (kind: Signal): grpc.handleUnaryCall<Buffer, Buffer> =>
    (call, callback) => {
      if (failure === 'hang') {
        failures.hung++;
        return;
      }
      if (failure !== 'none') {
        failures.refused++;
        callback({
          code: failure === 'reject' ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE,
          details: `otlp-receiver: ${failure} (test)`,
        });
        return;
      }
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(call.metadata.getMap())) {
        headers[key] = typeof value === 'string' ? value : value.toString('base64');
      }
      try {
        ingest(kind, 'grpc', headers, call.request);
        callback(null, emptyResponses[kind]);
      } catch (err) {
        errors.push(`grpc ${kind}: ${errorMessage(err)}`);
        callback({ code: grpc.status.INVALID_ARGUMENT, details: errorMessage(err) });
      }
    };
  const listenGrpc = (port: number) =>
    new Promise<{ server: grpc.Server; port: number }>((resolve, reject) => {
      const server = new grpc.Server();
      for (const kind of ['traces', 'metrics'] as const) {
        const service: grpc.ServiceDefinition = {
          Export: {
            path: ROUTES[kind].grpcPath,
            requestStream: false,
            responseStream: false,
            // Keep raw bytes here so decode errors become INVALID_ARGUMENT in the handler rather than INTERNAL.
            requestSerialize: identity,
            requestDeserialize: identity,
            responseSerialize: identity,
            responseDeserialize: identity,
            originalName: 'export',
          },
        };
        server.addService(service, { Export: grpcExportHandler(kind) });
      }
      server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve({ server, port: bound }),
      );
    });

  // --- HTTP/protobuf ---
  const gunzipAsync = promisify(gunzip);
  const handleHttp = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (code: number, body: string | Buffer, contentType = 'text/plain') => {
      res.writeHead(code, { 'content-type': contentType }).end(body);
    };
    if (failure === 'hang') {
      failures.hung++;
      return;
    }
    if (failure !== 'none') {
      failures.refused++;
      return reply(failure === 'reject' ? 400 : 503, `otlp-receiver: ${failure} (test)`);
    }
    const path = (req.url ?? '').split('?')[0];
    const kind = (['traces', 'metrics'] as const).find((k) => ROUTES[k].httpPath === path);
    if (!kind) return reply(404, `otlp-receiver: no route for ${path}`);
    if (req.method !== 'POST') return reply(405, 'otlp-receiver: POST only');
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
    if (contentType !== 'application/x-protobuf') {
      return reply(415, `otlp-receiver: unsupported content-type ${contentType ?? ''}`);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body = Buffer.concat(chunks);
    const encoding = req.headers['content-encoding'] ?? 'identity';
    if (encoding === 'gzip') body = await gunzipAsync(body);
    else if (encoding !== 'identity')
      return reply(415, `otlp-receiver: unsupported content-encoding ${encoding}`);

    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    try {
      ingest(kind, 'http', headers, body);
      reply(200, emptyResponses[kind], 'application/x-protobuf');
    } catch (err) {
      errors.push(`http ${kind}: ${errorMessage(err)}`);
      reply(400, `otlp-receiver: ${errorMessage(err)}`);
    }
  };
  const listenHttp = async (port: number): Promise<Server> => {
    const server = createServer((req, res) => {
      handleHttp(req, res).catch((err: unknown) => {
        errors.push(`http: ${errorMessage(err)}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  };

  let grpcServer = await listenGrpc(0);
  const grpcPort = grpcServer.port;
  let httpServer: Server | undefined = await listenHttp(0);
  const httpPort = (httpServer.address() as AddressInfo).port;
  let running = true;
  const stop = async () => {
    if (!running) return;
    running = false;
    // Exporters keep channels and keep-alive sockets open; cut them so that the next call finds nobody.
    grpcServer.server.forceShutdown();
    const http = httpServer;
    httpServer = undefined;
    http?.closeAllConnections();
    await new Promise<void>((resolve, reject) => http?.close((err) => (err ? reject(err) : resolve())));
  };

  return {
    grpcUrl: `http://127.0.0.1:${grpcPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    spans,
    metrics,
    histograms,
    requests,
    waitForSpans(n, timeoutMs = 10_000) {
      return waitUntil(
        () => (spans.length >= n ? spans : undefined),
        timeoutMs,
        () =>
          `expected ${n} span(s) within ${timeoutMs} ms, got ${spans.length}` +
          ` [${spans.map((s) => s.name).join(', ')}] from ${requestCount('traces')} trace request(s)`,
      );
    },
    waitForMetric(name, pred = () => true, timeoutMs = 10_000) {
      return waitUntil(
        () => metrics.find((p) => p.name === name && pred(p)),
        timeoutMs,
        () => {
          const seen = [...new Set(metrics.map((p) => p.name))].join(', ');
          const notDecoded = skipped.length ? `; not decoded: ${[...new Set(skipped)].join(', ')}` : '';
          return (
            `no point of metric "${name}" matching the predicate within ${timeoutMs} ms;` +
            ` metrics seen [${seen}] (${metrics.length} point(s)) from ${requestCount('metrics')}` +
            ` metric request(s)${notDecoded}`
          );
        },
      );
    },
    waitForHistogram(name, pred = () => true, timeoutMs = 10_000) {
      return waitUntil(
        () => histograms.findLast((p) => p.name === name && pred(p)),
        timeoutMs,
        () =>
          `no point of histogram "${name}" matching the predicate within ${timeoutMs} ms; histograms seen ` +
          `[${[...new Set(histograms.map((p) => p.name))].join(', ')}] (${histograms.length} point(s))`,
      );
    },
    failWith(mode) {
      failure = mode;
    },
    failures,
    stop,
    async restart() {
      if (running) return;
      grpcServer = await listenGrpc(grpcPort);
      httpServer = await listenHttp(httpPort);
      running = true;
    },
    close: stop,
  };
}

/** Runs `body` with a fresh receiver and always tears everything down so the process can exit. */
export async function withReceiver(body: (receiver: OtlpReceiver) => Promise<void>): Promise<void> {
  const receiver = await startOtlpReceiver();
  try {
    await body(receiver);
  } finally {
    await receiver.close();
  }
}
