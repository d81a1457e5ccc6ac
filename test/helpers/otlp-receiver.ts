// A real OTLP/gRPC + OTLP/HTTP (protobuf) trace receiver for tests. It decodes the bytes the
// OpenTelemetry exporters put on the wire using the official .proto files in
// test/fixtures/otlp-proto, so tests exercise the actual serialization instead of a mock.
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

export type OtlpValue =
  string | number | boolean | bigint | Uint8Array | null | OtlpValue[] | { [key: string]: OtlpValue };

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

export interface ReceivedRequest {
  transport: 'grpc' | 'http';
  /** Lower-case header / metadata names. */
  headers: Record<string, string>;
  spanCount: number;
  /** false when the request was refused because of setFailure('unavailable'). */
  accepted: boolean;
}

export interface OtlpReceiver {
  /** e.g. http://127.0.0.1:PORT — pass as the gRPC exporter's `url`. */
  readonly grpcUrl: string;
  /** Base URL without path, e.g. http://127.0.0.1:PORT; the HTTP exporter needs `${httpUrl}/v1/traces`. */
  readonly httpUrl: string;
  /** Spans from accepted requests, in arrival order (both transports). */
  readonly spans: ReceivedSpan[];
  readonly requests: ReceivedRequest[];
  /** Resolves with all spans once at least n arrived; rejects after timeoutMs (default 10 s). */
  waitForSpans(n: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** 'unavailable' refuses every export (gRPC UNAVAILABLE / HTTP 503) until reset to 'none'. */
  setFailure(mode: 'none' | 'unavailable'): void;
  close(): Promise<void>;
}

const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

// Shapes produced by Type.toObject with the options below (defaults, arrays, oneofs, BigInt longs).
interface RawAnyValue {
  value?:
    'stringValue' | 'boolValue' | 'intValue' | 'doubleValue' | 'arrayValue' | 'kvlistValue' | 'bytesValue';
  stringValue?: string;
  boolValue?: boolean;
  intValue?: bigint;
  doubleValue?: number;
  arrayValue?: { values: RawAnyValue[] };
  kvlistValue?: { values: RawKeyValue[] };
  bytesValue?: Uint8Array;
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
interface RawExportRequest {
  resourceSpans: {
    resource: { attributes: RawKeyValue[] } | null;
    scopeSpans: { scope: { name: string; version: string } | null; spans: RawSpan[] }[];
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
  decodeRequest: (bytes: Uint8Array) => RawExportRequest;
  emptyResponse: Buffer;
}

let codec: Codec | undefined;
function getCodec(): Codec {
  if (codec) return codec;
  const protoRoot = findProtoRoot();
  const root = new protobuf.Root();
  // The .proto imports are relative to the include root ("opentelemetry/proto/..."), like protoc -I.
  root.resolvePath = (_origin, target) => join(protoRoot, target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false });
  const requestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
  const responseType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
  codec = {
    decodeRequest: (bytes) =>
      requestType.toObject(requestType.decode(bytes), CONVERSION) as unknown as RawExportRequest,
    emptyResponse: Buffer.from(responseType.encode(responseType.create({})).finish()),
  };
  return codec;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function toValue(v: RawAnyValue | null): OtlpValue {
  switch (v?.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue': {
      const n = v.intValue ?? 0n;
      // Numbers are friendlier in assertions; only fall back to bigint when precision would be lost.
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'arrayValue':
      return (v.arrayValue?.values ?? []).map(toValue);
    case 'kvlistValue':
      return toAttributes(v.kvlistValue?.values ?? []);
    case 'bytesValue':
      return new Uint8Array(v.bytesValue ?? []);
    default:
      // Unset AnyValue (or string_value_strindex, which only profiles use).
      return null;
  }
}

function toAttributes(kvs: RawKeyValue[]): OtlpAttributes {
  const out: OtlpAttributes = {};
  for (const kv of kvs) out[kv.key] = toValue(kv.value);
  return out;
}

function toSpans(req: RawExportRequest): ReceivedSpan[] {
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

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const { decodeRequest, emptyResponse } = getCodec();
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  // Decode failures would otherwise only surface as a waitForSpans timeout; keep them for its message.
  const errors: string[] = [];
  const waiters = new Set<() => void>();
  let failure: 'none' | 'unavailable' = 'none';

  /** Shared by both transports; returns whether the export was accepted. */
  const ingest = (
    transport: ReceivedRequest['transport'],
    headers: Record<string, string>,
    body: Uint8Array,
  ) => {
    const received = toSpans(decodeRequest(body));
    const accepted = failure === 'none';
    requests.push({ transport, headers, spanCount: received.length, accepted });
    if (!accepted) return false;
    spans.push(...received);
    for (const wake of [...waiters]) wake();
    return true;
  };

  // --- gRPC ---
  const grpcServer = new grpc.Server();
  const identity = (b: Buffer): Buffer => b;
  const service: grpc.ServiceDefinition = {
    Export: {
      path: EXPORT_PATH,
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
  const exportHandler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(call.metadata.getMap())) {
      headers[key] = typeof value === 'string' ? value : value.toString('base64');
    }
    try {
      if (ingest('grpc', headers, call.request)) callback(null, emptyResponse);
      else callback({ code: grpc.status.UNAVAILABLE, details: 'otlp-receiver: failure mode "unavailable"' });
    } catch (err) {
      errors.push(`grpc: ${errorMessage(err)}`);
      callback({ code: grpc.status.INVALID_ARGUMENT, details: errorMessage(err) });
    }
  };
  grpcServer.addService(service, { Export: exportHandler });
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });

  // --- HTTP/protobuf ---
  const gunzipAsync = promisify(gunzip);
  const handleHttp = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const reply = (code: number, body: string | Buffer, contentType = 'text/plain') => {
      res.writeHead(code, { 'content-type': contentType }).end(body);
    };
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/v1/traces') return reply(404, `otlp-receiver: no route for ${path}`);
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
      if (ingest('http', headers, body)) reply(200, emptyResponse, 'application/x-protobuf');
      else reply(503, 'otlp-receiver: failure mode "unavailable"');
    } catch (err) {
      errors.push(`http: ${errorMessage(err)}`);
      reply(400, `otlp-receiver: ${errorMessage(err)}`);
    }
  };
  const httpServer = createServer((req, res) => {
    handleHttp(req, res).catch((err: unknown) => {
      errors.push(`http: ${errorMessage(err)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(0, '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const httpPort = (httpServer.address() as AddressInfo).port;

  return {
    grpcUrl: `http://127.0.0.1:${grpcPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    spans,
    requests,
    waitForSpans(n, timeoutMs = 10_000) {
      if (spans.length >= n) return Promise.resolve(spans);
      return new Promise((resolve, reject) => {
        const wake = () => {
          if (spans.length < n) return;
          cleanup();
          resolve(spans);
        };
        const timer = setTimeout(() => {
          cleanup();
          const names = spans.map((s) => s.name).join(', ');
          const errs = errors.length ? `; receiver errors: ${errors.join(' | ')}` : '';
          reject(
            new Error(
              `otlp-receiver: expected ${n} span(s) within ${timeoutMs} ms, got ${spans.length}` +
                ` [${names}] from ${requests.length} request(s)${errs}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        waiters.add(wake);
      });
    },
    setFailure(mode) {
      failure = mode;
    },
    async close() {
      // Exporters may keep channels / keep-alive sockets open; force them shut so the test process exits.
      grpcServer.forceShutdown();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve, reject) =>
        httpServer.close((err) => (err ? reject(err) : resolve())),
      );
    },
  };
}
