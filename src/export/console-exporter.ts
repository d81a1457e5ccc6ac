/**
 * The embedded default when no OTLP endpoint is configured: each batch printed as readable trace trees, so the
 * tool is useful without a collector. One block per trace; children under their parent; links shown by name.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Shown in the headline, so left out of the attribute line. */
const HEADLINE_KEYS = new Set([
  'http.request.method',
  'http.request.method_original',
  'url.path',
  'url.query',
  'http.response.status_code',
  'network.protocol.name',
  'network.protocol.version',
  'network.transport',
  'h2o.conn_id',
  'h2o.req_id',
]);

export interface Writable {
  write(text: string): unknown;
}

function durationMs(start: HrTime, end: HrTime): string {
  const ns = (end[0] - start[0]) * 1e9 + (end[1] - start[1]);
  return `${(ns / 1e6).toFixed(3)} ms`;
}

function isoTime(t: HrTime): string {
  const d = new Date(t[0] * 1000 + Math.floor(t[1] / 1e6));
  return d.toISOString();
}

function formatValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function attributeLine(a: Attributes): string {
  const parts: string[] = [];
  for (const key of Object.keys(a).sort()) {
    if (HEADLINE_KEYS.has(key)) continue;
    parts.push(`${key}=${formatValue(a[key])}`);
  }
  return parts.join(' ');
}

function protocolText(a: Attributes): string {
  const v = a['network.protocol.version'];
  const t = a['network.transport'];
  return [v === undefined ? 'HTTP' : `HTTP/${String(v)}`, t === undefined ? '' : `over ${String(t)}`]
    .filter((s) => s.length > 0)
    .join(' ');
}

function headline(span: ReadableSpan): string {
  const a = span.attributes;
  const ids = `conn=${String(a['h2o.conn_id'] ?? '?')}${a['h2o.req_id'] === undefined ? '' : ` req=${String(a['h2o.req_id'])}`}`;
  const took = durationMs(span.startTime, span.endTime);
  const failed = span.status.code === SpanStatusCode.ERROR ? '  ERROR' : '';
  if (span.kind === SpanKind.SERVER) {
    const method = a['http.request.method_original'] ?? a['http.request.method'] ?? span.name;
    const query = a['url.query'] === undefined ? '' : `?${String(a['url.query'])}`;
    const target = a['url.path'] === undefined ? '' : ` ${String(a['url.path'])}${query}`;
    const status = a['http.response.status_code'] ?? '(no response)';
    return `${String(method)}${target} → ${String(status)}  ${protocolText(a)}  ${took}  ${ids}${failed}`;
  }
  if (span.kind === SpanKind.CLIENT) {
    const peer =
      a['network.peer.address'] === undefined
        ? ''
        : ` → ${String(a['network.peer.address'])}:${String(a['network.peer.port'] ?? '?')}`;
    return `${span.name}${peer}  ${took}${failed}`;
  }
  return `${span.name}  ${protocolText(a)}  ${took}  ${ids}${failed}`;
}

export class ConsoleTreeExporter implements SpanExporter {
  constructor(private readonly _out: Writable) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const byTrace = new Map<string, ReadableSpan[]>();
    for (const s of spans) {
      const id = s.spanContext().traceId;
      const list = byTrace.get(id);
      if (list === undefined) byTrace.set(id, [s]);
      else list.push(s);
    }
    let text = '';
    for (const [traceId, list] of byTrace) text += this._trace(traceId, list);
    this._out.write(text);
    resultCallback({ code: ExportResultCode.SUCCESS });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  private _trace(traceId: string, spans: ReadableSpan[]): string {
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    const children = new Map<string, ReadableSpan[]>();
    const roots: ReadableSpan[] = [];
    for (const s of spans) {
      const parent = s.parentSpanContext?.spanId;
      if (parent === undefined || !ids.has(parent)) {
        roots.push(s);
        continue;
      }
      const list = children.get(parent);
      if (list === undefined) children.set(parent, [s]);
      else list.push(s);
    }
    roots.sort((x, y) => x.startTime[0] - y.startTime[0] || x.startTime[1] - y.startTime[1]);
    const first = roots[0];
    const remote = first?.parentSpanContext;
    const origin = remote === undefined ? '' : `  (continues ${remote.spanId} from traceparent)`;
    let text = `trace ${traceId}${first === undefined ? '' : `  ${isoTime(first.startTime)}`}${origin}\n`;
    const walk = (s: ReadableSpan, depth: number): void => {
      const pad = '  '.repeat(depth);
      text += `${pad}└─ ${headline(s)}\n`;
      const attrs = attributeLine(s.attributes);
      if (attrs.length > 0) text += `${pad}     ${attrs}\n`;
      for (const e of s.events) text += `${pad}     • ${e.name} +${durationMs(s.startTime, e.time)}\n`;
      for (const l of s.links) {
        const conn = s.attributes['h2o.conn_id'];
        const what =
          s.kind === SpanKind.SERVER && conn !== undefined
            ? `connection span of conn=${String(conn)}`
            : 'span';
        text += `${pad}     ↪ link to ${what}: trace ${l.context.traceId} span ${l.context.spanId}\n`;
      }
      for (const c of children.get(s.spanContext().spanId) ?? []) walk(c, depth + 1);
    };
    for (const r of roots) walk(r, 0);
    return text;
  }
}
