/**
 * A request record → its span's attributes, following the stable HTTP server semantic conventions: method, URL,
 * server and client, status, protocol, body sizes, and the headers the policy captures.
 */
import { K } from './attribute-keys.js';
import { AttributeList } from './attribute-list.js';
import type { AttrKey } from './attribute-list.js';
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

/** Every key is written once with `push`, but those a header can repeat or a later source can overwrite. */
export function requestAttributes(req: RequestRecord, opts: RequestAttributeOptions): AttributeList {
  const a = new AttributeList();
  const policy = opts.headers;
  let method: string | undefined;
  let target: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  let forwardedFor: string | undefined;
  const captured = new Map<AttrKey, string[]>();
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
        a.set(K.userAgentOriginal, h.value);
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
      a.push(K.httpRequestMethod, method);
    } else {
      a.push(K.httpRequestMethod, '_OTHER');
      a.push(K.httpRequestMethodOriginal, method);
    }
  }
  if (target !== undefined) {
    const { path, query } = splitTarget(target);
    a.push(K.urlPath, redactPath(path, opts.sensitiveQueryParams));
    if (query !== undefined) a.push(K.urlQuery, redactQuery(query, opts.sensitiveQueryParams));
  }
  if (scheme !== undefined) a.push(K.urlScheme, scheme);
  if (authority !== undefined) {
    const parsed = parseAuthority(authority);
    if (parsed !== undefined) {
      a.push(K.serverAddress, parsed.host);
      const port = parsed.port ?? defaultPort(scheme);
      if (port !== undefined) a.push(K.serverPort, port);
    }
  }
  if (req.status !== undefined) a.push(K.httpResponseStatusCode, req.status);
  a.push(K.networkProtocolName, 'http');
  const version = networkProtocolVersion(req);
  if (version !== undefined) a.push(K.networkProtocolVersion, version);
  a.push(K.networkTransport, req.conn.protocol === 'http/3' ? 'quic' : 'tcp');
  if (forwardedFor !== undefined && forwardedFor.length > 0) a.push(K.clientAddress, forwardedFor);
  if (req.conn.remote !== undefined) addPeer(a, req.conn.remote);
  a.push(K.connId, req.conn.connId);
  a.push(K.reqId, req.reqId);
  if (req.upgradedToHttp2) a.push(K.upgrade, 'h2c');
  for (const h of req.responseHeaders) {
    if (h.truncated === true) truncated.push(h.name);
    if (h.name === 'content-length') {
      const n = Number(h.value);
      if (Number.isSafeInteger(n)) a.set(K.httpResponseBodySize, n);
    }
    const rule = policy.rule(h.name);
    if (rule.response) capture(opts, rule.responseAttribute, rule, captured, h, truncated);
  }
  if (req.bodyBytesSent !== undefined) a.set(K.httpResponseBodySize, req.bodyBytesSent);
  if (req.timings !== undefined) addTimings(a, req.timings);
  const stats = req.streamStats;
  if (stats !== undefined) {
    if (typeof stats.request_body_bytes === 'number') a.push(K.httpRequestBodySize, stats.request_body_bytes);
    if (typeof stats.response_body_bytes === 'number')
      a.set(K.httpResponseBodySize, stats.response_body_bytes);
  }
  for (const [key, values] of captured) a.push(key, values);
  if (truncated.length > 0) a.push(K.truncatedHeaders, truncated);
  if (req.hiddenHeaders > 0) a.push(K.hiddenHeaders, req.hiddenHeaders);
  if (req.droppedHeaders > 0) a.push(K.droppedHeaders, req.droppedHeaders);
  if (req.incomplete !== undefined) a.push(K.incomplete, req.incomplete);
  return a;
}

/**
 * A captured header: redacted when its name is sensitive, the secrets of the URLs it holds redacted otherwise,
 * cut (and listed as truncated) when too long.
 */
function capture(
  opts: RequestAttributeOptions,
  key: AttrKey,
  rule: HeaderRule,
  captured: Map<AttrKey, string[]>,
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
function addTimings(a: AttributeList, t: H2oTimings): void {
  if (t.connectedAt !== undefined) a.push(K.timingsConnectMs, durationMs(t.connectedAt, t.requestBegin));
  if (t.responseStart !== undefined) a.push(K.timingsProcessMs, durationMs(t.requestBegin, t.responseStart));
  if (t.responseStart !== undefined && t.responseEnd !== undefined)
    a.push(K.timingsResponseMs, durationMs(t.responseStart, t.responseEnd));
  if (t.responseEnd !== undefined) a.push(K.timingsTotalMs, durationMs(t.requestBegin, t.responseEnd));
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
