/**
 * A request record → its span's attributes, following the stable HTTP server semantic conventions: method, URL,
 * server and client, status, protocol, body sizes, and the headers the policy captures.
 */
import type { Attributes } from '@opentelemetry/api';
import type { H2oTimings, Header, RequestRecord } from '../correlate/records.js';
import { protocolVersion } from '../events/catalogue.js';
import { addPeer } from './connection-attributes.js';
import type { HeaderPolicy, HeaderRule } from './header-policy.js';
import { durationMs } from './hr-time.js';
import { REDACTED } from './secret-names.js';
import { defaultPort, parseAuthority, redactPath, redactQuery, redactUrls, splitTarget } from './url.js';
import type { SensitiveQueryParams } from './url.js';

export interface RequestAttributeOptions {
  readonly headers: HeaderPolicy;
  readonly sensitiveQueryParams: SensitiveQueryParams;
}

/** Request headers the mapping reads whatever the capture policy: the URL, peer, user agent and trace context. */
export const MAPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ':method',
  ':path',
  ':scheme',
  ':authority',
  'user-agent',
  'x-forwarded-for',
  'forwarded',
  'traceparent',
  'tracestate',
]);

/** Response headers the mapping reads whatever the capture policy. */
export const MAPPED_RESPONSE_HEADERS: readonly string[] = ['content-length'];

/** RFC 9110 methods plus PATCH: anything else is `_OTHER` (semantic conventions). */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

export function requestAttributes(req: RequestRecord, opts: RequestAttributeOptions): Attributes {
  const a: Attributes = {};
  const policy = opts.headers;
  let method: string | undefined;
  let target: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let forwardedFor: string | undefined;
  const captured = new Map<string, string[]>();
  const truncated: string[] = [];
  for (const h of req.requestHeaders) {
    if (h.truncated === true) truncated.push(h.name);
    switch (h.name) {
      case ':method':
        method = h.value;
        continue;
      case ':path':
        target = h.value;
        continue;
      case ':scheme':
        scheme = h.value;
        continue;
      case ':authority':
        authority = h.value;
        continue;
      case 'user-agent':
        a['user_agent.original'] = h.value;
        break;
      case 'x-forwarded-for':
        forwardedFor ??= h.value.split(',')[0]?.trim();
        break;
      case 'forwarded':
        forwardedFor ??= forwardedForOf(h.value);
        break;
    }
    const rule = policy.rule(h.name);
    if (rule.request) capture(opts, rule.requestAttribute, rule, captured, h, truncated);
  }
  if (method !== undefined) {
    if (KNOWN_METHODS.has(method)) {
      a['http.request.method'] = method;
    } else {
      a['http.request.method'] = '_OTHER';
      a['http.request.method_original'] = method;
    }
  }
  if (target !== undefined) {
    const { path, query } = splitTarget(target);
    a['url.path'] = redactPath(path, opts.sensitiveQueryParams);
    if (query !== undefined) a['url.query'] = redactQuery(query, opts.sensitiveQueryParams);
  }
  if (scheme !== undefined) a['url.scheme'] = scheme;
  if (authority !== undefined) {
    const parsed = parseAuthority(authority);
    if (parsed !== undefined) {
      a['server.address'] = parsed.host;
      const port = parsed.port ?? defaultPort(scheme);
      if (port !== undefined) a['server.port'] = port;
    }
  }
  if (req.status !== undefined) a['http.response.status_code'] = req.status;
  a['network.protocol.name'] = 'http';
  const version = networkProtocolVersion(req);
  if (version !== undefined) a['network.protocol.version'] = version;
  a['network.transport'] = req.conn.protocol === 'http/3' ? 'quic' : 'tcp';
  if (forwardedFor !== undefined && forwardedFor.length > 0) a['client.address'] = forwardedFor;
  if (req.conn.remote !== undefined) addPeer(a, req.conn.remote);
  a['h2o.conn_id'] = req.conn.connId;
  a['h2o.req_id'] = req.reqId;
  if (req.upgradedToHttp2) a['h2o.upgrade'] = 'h2c';
  for (const h of req.responseHeaders) {
    if (h.truncated === true) truncated.push(h.name);
    if (h.name === 'content-length') {
      const n = Number(h.value);
      if (Number.isSafeInteger(n)) a['http.response.body.size'] = n;
    }
    const rule = policy.rule(h.name);
    if (rule.response) capture(opts, rule.responseAttribute, rule, captured, h, truncated);
  }
  if (req.bodyBytesSent !== undefined) a['http.response.body.size'] = req.bodyBytesSent;
  if (req.timings !== undefined) addTimings(a, req.timings);
  const stats = req.streamStats;
  if (stats !== undefined) {
    if (typeof stats.request_body_bytes === 'number') a['http.request.body.size'] = stats.request_body_bytes;
    if (typeof stats.response_body_bytes === 'number')
      a['http.response.body.size'] = stats.response_body_bytes;
  }
  for (const [key, values] of captured) a[key] = values;
  if (truncated.length > 0) a['h2o.truncated_headers'] = truncated;
  if (req.hiddenHeaders > 0) a['h2o.hidden_headers'] = req.hiddenHeaders;
  if (req.droppedHeaders > 0) a['h2o.dropped_headers'] = req.droppedHeaders;
  if (req.incomplete !== undefined) a['h2o.incomplete'] = req.incomplete;
  return a;
}

/**
 * A captured header: redacted when its name is sensitive, the secrets of the URLs it holds redacted otherwise,
 * cut (and listed as truncated) when too long.
 */
function capture(
  opts: RequestAttributeOptions,
  key: string,
  rule: HeaderRule,
  captured: Map<string, string[]>,
  h: Header,
  truncated: string[],
): void {
  const max = opts.headers.maxValueLength;
  let value = h.value;
  if (rule.redacted) {
    value = REDACTED;
  } else {
    value = redactUrls(value, opts.sensitiveQueryParams);
    if (value.length > max) {
      value = value.slice(0, max);
      if (h.truncated !== true) truncated.push(h.name);
    }
  }
  const list = captured.get(key);
  if (list === undefined) captured.set(key, [value]);
  else list.push(value);
}

/**
 * H2O's own durations, as its access log names them (`%{connect-time}x`, `process-time`, `response-time`,
 * `total-time`), in ms. H2O stamps them with its event loop's clock, so work done in one loop turn shows as 0.
 */
function addTimings(a: Attributes, t: H2oTimings): void {
  if (t.connectedAt !== undefined) a['h2o.timings.connect_ms'] = durationMs(t.connectedAt, t.requestBegin);
  if (t.responseStart !== undefined)
    a['h2o.timings.process_ms'] = durationMs(t.requestBegin, t.responseStart);
  if (t.responseStart !== undefined && t.responseEnd !== undefined)
    a['h2o.timings.response_ms'] = durationMs(t.responseStart, t.responseEnd);
  if (t.responseEnd !== undefined) a['h2o.timings.total_ms'] = durationMs(t.requestBegin, t.responseEnd);
}

function networkProtocolVersion(req: RequestRecord): string | undefined {
  if (req.upgradedToHttp2) return '2';
  if (req.httpVersion !== undefined) return protocolVersion(req.httpVersion);
  if (req.conn.protocol === 'http/2') return '2';
  if (req.conn.protocol === 'http/3') return '3';
  return undefined;
}

/** The first `for=` of a `Forwarded` header (RFC 7239), without quotes, brackets or port. */
function forwardedForOf(value: string): string | undefined {
  const m = /(?:^|[;,\s])for=("?)([^;,"]+)\1/i.exec(value);
  if (m === null) return undefined;
  let v = m[2]!.trim();
  if (v.startsWith('[')) v = v.slice(1, v.indexOf(']') > 0 ? v.indexOf(']') : undefined);
  else if (/^[\d.]+:\d+$/.test(v)) v = v.slice(0, v.indexOf(':'));
  return v;
}
