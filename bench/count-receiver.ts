/**
 * A minimal OTLP/gRPC trace receiver for the benchmark, run as its own process so it does not share the
 * exporter's CPU: it counts the spans of each request (SERVER ones apart) straight from the wire format.
 * Messages: parent → 'counts'; child → { port } once listening, { spans, serverSpans, requests } on request.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { handleUnaryCall } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * Walks the protobuf wire format just deep enough to count spans and read their kind
 * (ExportTraceServiceRequest.resource_spans=1 → ResourceSpans.scope_spans=2 → ScopeSpans.spans=2 → Span.kind=6),
 * so the receiver costs far less than the exporter it measures.
 */
function walk(buf: Uint8Array, depth: number, onSpan: (kind: number) => void): void {
  const r = protobuf.Reader.create(buf);
  let kind = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 2) {
      const bytes = r.bytes();
      if (depth === 0 && field === 1) walk(bytes, 1, onSpan);
      else if (depth === 1 && field === 2) walk(bytes, 2, onSpan);
      else if (depth === 2 && field === 2) walk(bytes, 3, onSpan);
    } else if (depth === 3 && field === 6 && wire === 0) {
      kind = r.int32();
    } else {
      r.skipType(wire);
    }
  }
  if (depth === 3) onSpan(kind);
}

let spans = 0;
let serverSpans = 0;
let requests = 0;
const identity = (b: Buffer): Buffer => b;
const exportCall: handleUnaryCall<Buffer, Buffer> = (call, callback) => {
  requests++;
  walk(call.request, 0, (kind) => {
    spans++;
    if (kind === 2) serverSpans++;
  });
  callback(null, Buffer.alloc(0));
};

const server = new Server();
server.addService(
  {
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  { Export: exportCall },
);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err !== null) throw err;
  process.send?.({ port });
});
process.on('message', (m) => {
  if (m === 'counts') process.send?.({ spans, serverSpans, requests });
});
process.on('disconnect', () => process.exit(0));
