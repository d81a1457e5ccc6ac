/**
 * A minimal OTLP/gRPC trace receiver for the benchmark, run as its own process so it does not share the
 * exporter's CPU: it counts the spans of each request (SERVER ones apart) straight from the wire format.
 * Messages: parent → 'counts'; child → { port } once listening, { spans, serverSpans, requests } on request.
 * An optional argument is the port to listen on (a collector that comes back where it was); default any.
 *
 * It speaks gRPC on node:http2 rather than through grpc-js's server, for one reason: flow control. grpc-js's server
 * grants the HTTP/2 default window of 64 KiB per stream and per connection and never grows it, so a 3 MB export
 * crawls through ~50 window round trips, each waiting for the exporter's busy event loop; measured, it held the
 * exporter to 0.4–0.6 of what it sends to a receiver with large windows. The Collector, Jaeger and Tempo are Go
 * servers whose gRPC grows its windows by bandwidth-delay estimate up to 16 MiB, which is what this one grants.
 */
import http2 from 'node:http2';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

const COLLECTOR_WINDOW = 16 << 20;
const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

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
const countSpan = (kind: number): void => {
  spans++;
  if (kind === 2) serverSpans++;
};

/** gRPC length-prefixed messages: flag byte (1 = gzip), 4-byte big-endian length, message. */
function countMessages(body: Buffer): boolean {
  let off = 0;
  while (off + 5 <= body.length) {
    const len = body.readUInt32BE(off + 1);
    if (off + 5 + len > body.length) return false;
    const msg = body.subarray(off + 5, off + 5 + len);
    walk(body[off] === 1 ? gunzipSync(msg) : msg, 0, countSpan);
    off += 5 + len;
  }
  return off === body.length;
}

const EMPTY_RESPONSE = Buffer.alloc(5);

const server = http2.createServer({
  settings: { initialWindowSize: COLLECTOR_WINDOW },
  // Node refuses new streams once a session buffers 10 MB by default; a few exports in flight exceed that.
  maxSessionMemory: 1 << 30,
});
server.on('session', (session) => session.setLocalWindowSize(COLLECTOR_WINDOW));
server.on('stream', (stream, headers) => {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    requests++;
    // UNIMPLEMENTED for another path; INTERNAL for a body it cannot decode, which the exporter retries and then
    // counts as failed.
    const status =
      headers[':path'] !== EXPORT_PATH ? '12' : countMessages(Buffer.concat(chunks)) ? '0' : '13';
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': status }));
    stream.end(status === '0' ? EMPTY_RESPONSE : undefined);
  });
  stream.on('error', () => undefined);
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
});
process.on('message', (m) => {
  if (m === 'counts') process.send?.({ spans, serverSpans, requests });
});
process.on('disconnect', () => process.exit(0));
