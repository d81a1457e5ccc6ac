/**
 * Which request and response headers become span attributes, and which values are never exported.
 * Semantic conventions: headers are opt-in (`http.request.header.<lowercased name>`, string[]); secrets are
 * replaced by `REDACTED` even when a user allows them. Names are judged as H2O spells them (lowercase), whatever
 * the capture wrote: a replayed or foreign capture's `Authorization`, `COOKIE` or `cookie\0` is still a secret.
 */
import type { AttrKey } from './attribute-list.js';
import { attrKey } from './attribute-list.js';
import { PerName, SECRET_HEADER_NAME_PARTS, SecretNames } from './secret-names.js';

/**
 * Always redacted: credentials and their challenges, session cookies, the usual API-key and CSRF headers; any
 * name containing token, secret, passw(ord), apikey, session, signature, credential, jwt, cookie, csrf, xsrf
 * or auth is redacted too (SECRET_HEADER_NAME_PARTS).
 */
export const DEFAULT_SANITIZED_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'authentication-info',
  'proxy-authentication-info',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-apikey',
  'x-auth-token',
  'x-access-token',
  'x-amz-security-token',
  'x-goog-api-key',
  'x-functions-key',
  'ocp-apim-subscription-key',
  'private-token',
  'x-session-id',
  'x-csrf-token',
  'x-xsrf-token',
];

export interface HeaderPolicyOptions {
  /** Request header names to capture (case-insensitive); `*` captures all. */
  readonly request: readonly string[];
  readonly response: readonly string[];
  /** Names redacted in addition to the defaults. */
  readonly sanitize: readonly string[];
  /** Longer values are cut here and the header name listed in `h2o.truncated_headers`. */
  readonly maxValueLength: number;
}

/** What the policy does with one header name. */
export interface HeaderRule {
  /** The attribute key's last part: the name lowercased, without control characters or surrounding spaces. */
  readonly key: string;
  /** The attribute keys, `http.request.header.<key>` and `http.response.header.<key>`, interned once per name. */
  readonly requestAttribute: AttrKey;
  readonly responseAttribute: AttrKey;
  readonly request: boolean;
  readonly response: boolean;
  /** The value is exported as REDACTED: a secret's name, or a name no HTTP parser accepts (a disguise). */
  readonly redacted: boolean;
}

export interface HeaderPolicy {
  /** The rule for a name as the capture spells it. */
  readonly rule: (name: string) => HeaderRule;
  readonly maxValueLength: number;
  /** Whether any response header is captured (decides the `send_response_header` subscription). */
  readonly anyResponse: boolean;
  /** The captured names (lowercase), or `all` for `*`. */
  readonly requestNames: readonly string[] | 'all';
  readonly responseNames: readonly string[] | 'all';
}

const REQUEST_PREFIX = 'http.request.header.';
const RESPONSE_PREFIX = 'http.response.header.';
// eslint-disable-next-line no-control-regex -- stripping control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/g;
/** An RFC 9110 field name (a token), or a pseudo-header. */
const FIELD_NAME = /^:?[-!#$%&'*+.^_`|~0-9a-z]+$/;

/** A header name as H2O spells it: lowercase, without control characters or surrounding whitespace. */
export function normalizeHeaderName(name: string): string {
  return name.replace(CONTROL, '').trim().toLowerCase();
}

/**
 * Header names as a decoder meets them, each spelling (H2O's own, or a foreign capture's `X-Request-Id`)
 * normalised once: then one lookup per header line, whether the name is in the set or not.
 */
export class HeaderNameSet {
  private readonly _verdicts: PerName<boolean>;

  constructor(names: readonly string[]) {
    const normalized = new Set(names.map(normalizeHeaderName));
    this._verdicts = new PerName((name) => normalized.has(normalizeHeaderName(name)));
  }

  has(name: string): boolean {
    return this._verdicts.get(name);
  }
}

function nameList(names: readonly string[]): readonly string[] | 'all' {
  const set = new Set(names.map(normalizeHeaderName).filter((n) => n.length > 0));
  return set.has('*') ? 'all' : [...set];
}

function matcher(names: readonly string[] | 'all'): (key: string) => boolean {
  if (names === 'all') return (key) => key.length > 0 && !key.startsWith(':');
  const set = new Set(names);
  return (key) => set.has(key);
}

export function headerPolicy(opts: HeaderPolicyOptions): HeaderPolicy {
  const secrets = new SecretNames([...DEFAULT_SANITIZED_HEADERS, ...opts.sanitize], SECRET_HEADER_NAME_PARTS);
  const requestNames = nameList(opts.request);
  const responseNames = nameList(opts.response);
  const captureRequest = matcher(requestNames);
  const captureResponse = matcher(responseNames);
  // Once per distinct spelling, not per header: H2O sends the same few names over and over.
  const judge = (name: string): HeaderRule => {
    const key = normalizeHeaderName(name);
    const pseudo = key.startsWith(':');
    return {
      key,
      requestAttribute: attrKey(REQUEST_PREFIX + key),
      responseAttribute: attrKey(RESPONSE_PREFIX + key),
      request: captureRequest(key),
      response: captureResponse(key),
      redacted: !FIELD_NAME.test(name.trim().toLowerCase()) || (!pseudo && secrets.has(key)),
    };
  };
  const rules = new PerName(judge);
  return {
    rule: (name) => rules.get(name),
    maxValueLength: opts.maxValueLength,
    anyResponse: responseNames === 'all' || responseNames.length > 0,
    requestNames,
    responseNames,
  };
}

/** Split a comma-separated list as the OTEL_INSTRUMENTATION_HTTP_* variables use. */
export function parseNameList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
}
