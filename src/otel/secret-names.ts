/**
 * Which header and query-parameter names carry secrets. Names are compared squashed (lowercase letters and
 * digits only), so `Authorization`, `authorization `, `cookie\0`, `X-Amz-Signature`, `x_amz_signature` and
 * `api-key`/`api_key`/`apikey` are each one name: a capture from another tool, or a hand-edited replay, spells
 * names as it likes, and a secret must not slip through on its spelling.
 */

/** What a secret value is replaced by (the semantic conventions' word). */
export const REDACTED = 'REDACTED';

/** A name containing one of these (squashed) is a secret too: `x-my-session`, `refreshToken`, `user[password]`. */
export const SECRET_NAME_PARTS: readonly string[] = [
  'token',
  'secret',
  'passw',
  'apikey',
  'session',
  'signature',
  'credential',
  'jwt',
  'cookie',
  'csrf',
  'xsrf',
];

/** Headers only: `auth` as part of a query name would hide `author=`. */
export const SECRET_HEADER_NAME_PARTS: readonly string[] = [...SECRET_NAME_PARTS, 'auth'];

/** Lowercase letters and digits only. */
export function squashName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

/** Cached verdicts per raw name are dropped past this many distinct names, so hostile input cannot grow them. */
const NAME_CACHE_LIMIT = 4096;

/**
 * `judge`, remembered per distinct name as written (the cost per header is then one map lookup). A class, not a
 * closure: its `get` is one function wherever it is called, so V8 inlines it into the per-header loops.
 */
export class PerName<T> {
  private readonly _verdicts = new Map<string, T>();

  constructor(private readonly _judge: (name: string) => T) {}

  get(name: string): T {
    let verdict = this._verdicts.get(name);
    if (verdict === undefined) {
      if (this._verdicts.size >= NAME_CACHE_LIMIT) this._verdicts.clear();
      verdict = this._judge(name);
      this._verdicts.set(name, verdict);
    }
    return verdict;
  }
}

/** A set of secret names and name parts, compared squashed. */
export class SecretNames {
  private readonly _exact: ReadonlySet<string>;

  constructor(
    names: readonly string[],
    private readonly _parts: readonly string[],
  ) {
    this._exact = new Set(names.map(squashName).filter((n) => n.length > 0));
  }

  /** Whether `name` (raw: any case, separators or control characters) is a secret. */
  has(name: string): boolean {
    const squashed = squashName(name);
    if (this._exact.has(squashed)) return true;
    for (const part of this._parts) if (squashed.includes(part)) return true;
    return false;
  }
}
