/**
 * `--config FILE`: a YAML mapping of options (for a Kubernetes ConfigMap), keys named as the flags. Each value
 * goes through its row's own parser, so a file is checked as the same flag or variable would be.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parseDocument } from 'yaml';
import type { ScalarTag, Tags } from 'yaml';
import { fileKey, isSwitch } from './option-spec.js';
import type { FileLayer, OptionSpec, OptionTable } from './option-spec.js';

/** The row naming the file itself: not settable from inside it. */
const CONFIG_KEY = 'config';

function isScalar(v: unknown): v is string | boolean {
  return typeof v === 'string' || typeof v === 'boolean';
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A flag's argument: the scalar's text (numbers are kept as text, see parseMapping); true/false suit switches. */
function argument(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean')
    throw new InvalidArgumentError(`takes a value, not ${v} (quote it to mean the word)`);
  throw new InvalidArgumentError(`must be a single value, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return 'nothing (remove the key for the default)';
  if (Array.isArray(v)) return 'a list';
  return isMapping(v) ? 'a mapping' : JSON.stringify(v);
}

/** `key: value` entries as the `k=v,k2=v2` the row's parser reads, with ',', '=' and '%' percent-encoded. */
function keyValueList(mapping: Record<string, unknown>): string {
  const encode = (text: string): string => text.replace(/[%,=]/g, (c) => encodeURIComponent(c));
  return Object.entries(mapping)
    .map(([k, v]) => {
      if (!isScalar(v)) throw new InvalidArgumentError(`${k}: must be a single value, got ${describe(v)}`);
      return `${encode(k)}=${encode(String(v))}`;
    })
    .join(',');
}

/**
 * One file value → the row's value. Switches take true/false; lists a sequence (each item as one occurrence of
 * the flag, or joined with commas for a comma-separated row) or one value; records a mapping or one value.
 */
function rowValue(spec: OptionSpec<unknown>, v: unknown): unknown {
  if (isSwitch(spec)) {
    if (typeof v !== 'boolean') throw new InvalidArgumentError(`must be true or false, got ${describe(v)}`);
    return v;
  }
  if (Array.isArray(spec.default) && Array.isArray(v)) {
    const items = v.map(argument);
    if (spec.combine === undefined) return spec.parse(items.join(','));
    let out: unknown = spec.default;
    for (const item of items) out = spec.combine(out, spec.parse(item));
    return out;
  }
  if (isMapping(spec.default) && isMapping(v)) return spec.parse(keyValueList(v));
  return spec.parse(argument(v));
}

/** Edit distance, for suggesting the key meant. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    row = next;
  }
  return row[b.length]!;
}

/** The key meant by an unknown one, when one is close (camelCase, `no-` prefix, `--` and typos included). */
function suggestion(unknown: string, keys: ReadonlyMap<string, OptionSpec<unknown>>): string | undefined {
  const kebab = unknown
    .replace(/^--?/, '')
    .replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
    .replace(/_/g, '-')
    .toLowerCase();
  const positive = kebab.replace(/^no-/, '');
  const toggle = keys.get(positive);
  if (kebab !== positive && toggle !== undefined && isSwitch(toggle)) return `${positive}: false`;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(kebab.length / 4)) + 1;
  for (const key of keys.keys()) {
    const d = distance(kebab, key);
    if (d < bestDistance) [best, bestDistance] = [key, d];
  }
  return best;
}

function unknownKeysError(name: string, unknown: string[], keys: ReadonlyMap<string, OptionSpec<unknown>>) {
  const listed = unknown.map((k) => {
    const meant = suggestion(k, keys);
    return meant === undefined ? k : `${k} (did you mean ${meant}?)`;
  });
  const what = unknown.length === 1 ? 'unknown key' : 'unknown keys';
  return new InvalidArgumentError(
    `${name}: ${what} ${listed.join(', ')}; keys are named as the flags, see --help`,
  );
}

/**
 * The YAML core schema with numbers kept as written, so each row's parser reads the text its flag would get
 * (`1.0`, `0x10`, `010` unchanged).
 */
function numbersAsText(tags: Tags): Tags {
  return tags.map((t) =>
    typeof t === 'object' && /:(int|float)$/.test(t.tag)
      ? ({ ...t, resolve: (s: string) => s } as ScalarTag)
      : t,
  );
}

/** The YAML text of a config file → a mapping; `name` (the path) prefixes every error. */
function parseMapping(text: string, name: string): Record<string, unknown> {
  const doc = parseDocument(text, { customTags: numbersAsText });
  const error = doc.errors[0];
  // The library's message goes on with a picture of the line: its first line says what and where.
  if (error !== undefined)
    throw new InvalidArgumentError(
      `${name}: not valid YAML: ${error.message.split('\n')[0]!.replace(/:$/, '')}`,
    );
  let content: unknown;
  try {
    content = doc.toJS();
  } catch (err) {
    // Alias bombs and the like: the library refuses them while building the value.
    throw new InvalidArgumentError(`${name}: not usable YAML: ${(err as Error).message}`);
  }
  // An empty file (or only comments) sets nothing.
  if (content === null || content === undefined) return {};
  if (!isMapping(content))
    throw new InvalidArgumentError(
      `${name}: must be a mapping of option keys to values, got ${describe(content)}`,
    );
  return content;
}

/** YAML text → the values it sets, by row key, each checked by its row's parser. */
export function configValues(text: string, name: string, table: OptionTable): FileLayer {
  const keys = new Map<string, OptionSpec<unknown>>();
  const rows = new Map<string, string>();
  for (const [key, spec] of Object.entries(table)) {
    if (key === CONFIG_KEY) continue;
    keys.set(fileKey(key, spec), spec);
    rows.set(fileKey(key, spec), key);
  }
  const mapping = parseMapping(text, name);
  if (CONFIG_KEY in mapping)
    throw new InvalidArgumentError(`${name}: ${CONFIG_KEY}: a config file cannot name another one`);
  const unknown = Object.keys(mapping).filter((k) => !keys.has(k));
  if (unknown.length > 0) throw unknownKeysError(name, unknown, keys);
  const values = new Map<string, unknown>();
  for (const [k, v] of Object.entries(mapping)) {
    try {
      values.set(rows.get(k)!, rowValue(keys.get(k)!, v));
    } catch (err) {
      if (err instanceof InvalidArgumentError) {
        const got = isScalar(v) && !err.message.includes(', got ') ? `, got ${JSON.stringify(v)}` : '';
        throw new InvalidArgumentError(`${name}: ${k}: ${err.message}${got}`);
      }
      throw err;
    }
  }
  return { name, values };
}

/** Reads and checks the file at `path`; an unreadable file is an option error as a bad value is. */
export function readConfigFile(path: string, table: OptionTable): FileLayer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new InvalidArgumentError(`${path}: cannot read the config file (${reason})`);
  }
  return configValues(text, path, table);
}
