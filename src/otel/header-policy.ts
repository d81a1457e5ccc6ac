/**
 * Which request and response headers become span attributes, and which values are never exported.
 * Semantic conventions: headers are opt-in (`http.request.header.<lowercased name>`, string[]); secrets are
 * replaced by `REDACTED` even when a user allows them.
 */

export const REDACTED = 'REDACTED';

/** Always redacted: credentials, session cookies and the usual API-key headers. */
export const DEFAULT_SANITIZED_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
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
  'ocp-apim-subscription-key',
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

export interface HeaderPolicy {
  readonly captureRequest: (name: string) => boolean;
  readonly captureResponse: (name: string) => boolean;
  readonly isSanitized: (name: string) => boolean;
  readonly maxValueLength: number;
  /** Whether any response header is captured (decides the `send_response_header` subscription). */
  readonly anyResponse: boolean;
  /** The captured names (lowercase), or `all` for `*`. */
  readonly requestNames: readonly string[] | 'all';
  readonly responseNames: readonly string[] | 'all';
}

function nameList(names: readonly string[]): readonly string[] | 'all' {
  const set = new Set(names.map((n) => n.trim().toLowerCase()).filter((n) => n.length > 0));
  return set.has('*') ? 'all' : [...set];
}

function matcher(names: readonly string[] | 'all'): (name: string) => boolean {
  if (names === 'all') return (name) => !name.startsWith(':');
  const set = new Set(names);
  return (name) => set.has(name);
}

export function headerPolicy(opts: HeaderPolicyOptions): HeaderPolicy {
  const sanitized = new Set([
    ...DEFAULT_SANITIZED_HEADERS,
    ...opts.sanitize.map((n) => n.trim().toLowerCase()),
  ]);
  const requestNames = nameList(opts.request);
  const responseNames = nameList(opts.response);
  return {
    captureRequest: matcher(requestNames),
    captureResponse: matcher(responseNames),
    isSanitized: (name) => sanitized.has(name),
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
