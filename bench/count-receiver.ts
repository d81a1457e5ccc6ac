/**
 * A minimal OTLP/gRPC trace receiver for the benchmark, run as its own process so it does not share the
 * exporter's CPU: it decodes each request with the official protos and counts spans (SERVER ones apart).
 * Messages: parent → 'counts'; child → { port } once listening, { spans, serverSpans, requests } on request.
 */
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { handleUnaryCall } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { repoRoot } from './stream.js';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(repoRoot, 'test', 'fixtures', 'otlp-proto', target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

interface Decoded {
  resourceSpans?: { scopeSpans?: { spans?: { kind?: number }[] }[] }[];
}

let spans = 0;
let serverSpans = 0;
let requests = 0;
const identity = (b: Buffer): Buffer => b;
const exportCall: handleUnaryCall<Buffer, Buffer> = (call, callback) => {
  const msg = Request.decode(call.request) as unknown as Decoded;
  requests++;
  for (const rs of msg.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? []) {
        spans++;
        if (s.kind === 2) serverSpans++;
      }
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
