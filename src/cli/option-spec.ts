/**
 * The shape of one row of the option table and what is generated from a table: the commander options, the
 * environment help, and the values (flag, else variable, else default), typed by the table itself.
 */
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';

export type Env = Readonly<Record<string, string | undefined>>;

/** One option, `T` being the type of its value. A row has a flag, variables, or both. */
export interface OptionSpec<T> {
  /** Commander spelling: `--name <arg>`, or `--name` / `--no-name` for a switch. */
  readonly flag?: string;
  /** Variables read when the flag is not given; the first one set (and not blank) wins. */
  readonly env?: readonly string[];
  readonly help: string;
  /** The environment help's line, when the flag's help does not suit it. */
  readonly envHelp?: string;
  readonly default: T;
  /** Shown as the default in both helps, instead of the value (collections are shown only this way). */
  readonly defaultHelp?: string;
  /** Flag argument or variable → value; throws InvalidArgumentError('must be …') on a bad one. */
  parse(raw: string): T;
  /** Repeatable flag: how one more occurrence joins the previous ones. */
  combine?(previous: T, next: T): T;
  readonly choices?: readonly string[];
  /** Keys of the rows this flag cannot be given with. */
  readonly conflicts?: readonly string[];
}

export type OptionTable = Readonly<Record<string, OptionSpec<unknown>>>;

/** The values a table resolves to, key by key. */
export type OptionValues<Table extends OptionTable> = {
  readonly [K in keyof Table]: Table[K] extends OptionSpec<infer T> ? T : never;
};

type Fields<T> = Omit<OptionSpec<T>, 'default' | 'parse' | 'combine' | 'choices'>;

/** An option taking a value; without a default it is `undefined` when not given. */
export function value<T>(spec: Fields<T> & { parse(raw: string): T; default: T }): OptionSpec<T>;
export function value<T>(spec: Fields<T> & { parse(raw: string): T }): OptionSpec<T | undefined>;
export function value<T>(
  spec: Fields<T> & { parse(raw: string): T; default?: T },
): OptionSpec<T | undefined> {
  return { default: undefined, ...spec };
}

/** A string used as given. */
export function text(spec: Fields<string>): OptionSpec<string | undefined> {
  return { ...spec, default: undefined, parse: (raw) => raw };
}

/** One of a few words; the type is their union. */
export function choice<const C extends string>(
  spec: Fields<C> & { choices: readonly C[]; default: C },
): OptionSpec<C>;
export function choice<const C extends string>(
  spec: Fields<C> & { choices: readonly C[] },
): OptionSpec<C | undefined>;
export function choice<const C extends string>(
  spec: Fields<C> & { choices: readonly C[]; default?: C },
): OptionSpec<C | undefined> {
  const words = spec.choices.join(' or ');
  return {
    default: undefined,
    ...spec,
    parse: (raw) => {
      const word = spec.choices.find((c) => c === raw.trim());
      if (word === undefined) throw new InvalidArgumentError(`must be ${words}`);
      return word;
    },
  };
}

/** A repeatable flag, each occurrence adding to a list (empty by default). */
export function list<T>(spec: Fields<T[]> & { parse(raw: string): T }): OptionSpec<T[]> {
  return { ...spec, default: [], parse: (raw) => [spec.parse(raw)], combine: (a, b) => [...a, ...b] };
}

/** A repeatable flag whose occurrences merge into one record, later keys winning (empty by default). */
export function record(
  spec: Fields<Record<string, string>> & { parse(raw: string): Record<string, string> },
): OptionSpec<Record<string, string>> {
  return { ...spec, default: {}, combine: (a, b) => ({ ...a, ...b }) };
}

/** A flag without argument: `--name` turns on, `--no-name` turns off. A variable, if any, is read with `parse`. */
export function toggle(spec: Fields<boolean> & { parse?: (raw: string) => boolean }): OptionSpec<boolean> {
  const { parse = () => false, ...rest } = spec;
  return { ...rest, default: spec.flag?.startsWith('--no-') === true, parse };
}

function takesArgument(flag: string): boolean {
  return /[<[]/.test(flag);
}

function shownDefault(spec: OptionSpec<unknown>): string | undefined {
  if (spec.defaultHelp !== undefined) return spec.defaultHelp;
  const d = spec.default;
  return typeof d === 'number' || typeof d === 'string' ? String(d) : undefined;
}

/** Adds a commander option per row with a flag. Each row's key must be the flag's attribute name. */
export function addOptions(command: Command, table: OptionTable): Command {
  for (const [key, spec] of Object.entries(table)) {
    if (spec.flag === undefined) continue;
    const shown = shownDefault(spec);
    // Defaults stay out of commander: a value it did not get from the command line is read from env.
    const option = new Option(
      spec.flag,
      shown === undefined ? spec.help : `${spec.help} (default: ${shown})`,
    );
    if (option.attributeName() !== key) throw new Error(`option table: ${spec.flag} is filed as "${key}"`);
    if (spec.conflicts !== undefined) option.conflicts([...spec.conflicts]);
    if (!takesArgument(spec.flag)) {
      command.addOption(option);
      continue;
    }
    if (spec.choices !== undefined) option.choices(spec.choices);
    else option.argParser(flagParser(option.long ?? spec.flag, spec));
    command.addOption(option);
  }
  return command;
}

function flagParser(name: string, spec: OptionSpec<unknown>): (raw: string, previous: unknown) => unknown {
  return (raw, previous) => {
    let parsed: unknown;
    try {
      parsed = spec.parse(raw);
    } catch (err) {
      if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`${name} ${err.message}`);
      throw err;
    }
    return previous !== undefined && spec.combine !== undefined ? spec.combine(previous, parsed) : parsed;
  };
}

function fromEnv(spec: OptionSpec<unknown>, env: Env): { value: unknown; source: string } | undefined {
  for (const name of spec.env ?? []) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    try {
      return { value: spec.parse(raw), source: name };
    } catch (err) {
      if (err instanceof InvalidArgumentError)
        throw new InvalidArgumentError(`${name} ${err.message}, got "${raw}"`);
      throw err;
    }
  }
  return undefined;
}

/** A row's value from the flag (commander parsed it already) or its first variable set; where it came from. */
function fromFlagOrEnv(
  command: Command,
  key: string,
  spec: OptionSpec<unknown>,
  env: Env,
): { value: unknown; source: string } | undefined {
  if (spec.flag !== undefined && command.getOptionValueSource(key) === 'cli')
    return { value: command.getOptionValue(key), source: longFlag(spec.flag) };
  return fromEnv(spec, env);
}

/** One row's value from its flag or variable, else its default (the rows read before the others, as --config). */
export function readValue<Table extends OptionTable, K extends keyof Table & string>(
  command: Command,
  table: Table,
  key: K,
  env: Env,
): OptionValues<Table>[K] {
  const spec = table[key]!;
  return (fromFlagOrEnv(command, key, spec, env)?.value ?? spec.default) as OptionValues<Table>[K];
}

/** Values read from a config file, by row key, already parsed; `name` says where they came from in errors. */
export interface FileLayer {
  readonly name: string;
  readonly values: ReadonlyMap<string, unknown>;
}

/**
 * Each row's value: the flag if given, else its first variable set, else the config file's, else its default.
 * `given` tells which rows were set by any of the three.
 */
export function readValues<Table extends OptionTable>(
  command: Command,
  table: Table,
  env: Env,
  file?: FileLayer,
): { values: OptionValues<Table>; given: ReadonlySet<keyof Table> } {
  const values: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const [key, spec] of Object.entries(table)) {
    const set = fromFlagOrEnv(command, key, spec, env);
    if (set !== undefined) {
      values[key] = set.value;
      sources.set(key, set.source);
    } else if (file?.values.has(key) === true) {
      values[key] = file.values.get(key);
      sources.set(key, `${file.name}: ${fileKey(key, spec)}`);
    } else values[key] = spec.default;
  }
  checkConflicts(table, sources);
  return { values: values as OptionValues<Table>, given: new Set(sources.keys()) };
}

/** Commander checks the flags against each other; a pair where one came from a variable or file is checked here. */
function checkConflicts(table: OptionTable, sources: ReadonlyMap<string, string>): void {
  for (const [key, source] of sources) {
    for (const other of table[key]!.conflicts ?? []) {
      const otherSource = sources.get(other);
      if (otherSource === undefined) continue;
      if (source.startsWith('--') && otherSource.startsWith('--')) continue;
      throw new InvalidArgumentError(`${source} cannot be used with ${otherSource}`);
    }
  }
}

/** `-q, --quiet` → `--quiet`. */
function longFlag(flag: string): string {
  return /--[\w-]+/.exec(flag)![0];
}

/**
 * A row's key in a config file: its flag's long name without `--` (and without `no-` for a negatable toggle,
 * which the file sets to false), or, for a row with only variables, the row's key in kebab-case.
 */
export function fileKey(key: string, spec: OptionSpec<unknown>): string {
  if (spec.flag !== undefined) return longFlag(spec.flag).slice(2).replace(/^no-/, '');
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A flag without argument: true or false in a config file. */
export function isSwitch(spec: OptionSpec<unknown>): boolean {
  return spec.flag !== undefined && !takesArgument(spec.flag);
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

const ENV_NAME_COLUMN = 40;
const ENV_HELP_WIDTH = 118;

/** One entry per row with variables: their names, then what they set, its flag and its default. */
export function envHelp(table: OptionTable): string {
  const out: string[] = [];
  const indent = ' '.repeat(ENV_NAME_COLUMN);
  for (const spec of Object.values(table)) {
    if (spec.env === undefined) continue;
    const flag = spec.flag?.split(' ')[0];
    const shown = shownDefault(spec);
    const notes = [flag === undefined ? '' : `as ${flag}`, shown === undefined ? '' : `default ${shown}`];
    const note = notes.filter((n) => n !== '').join(', ');
    const what = (spec.envHelp ?? spec.help) + (note === '' ? '' : ` (${note})`);
    const names = `  ${spec.env.join(', ')}`;
    const first = names.length < ENV_NAME_COLUMN ? names.padEnd(ENV_NAME_COLUMN) : undefined;
    if (first === undefined) out.push(names);
    wrap(what, ENV_HELP_WIDTH - ENV_NAME_COLUMN).forEach((line, i) =>
      out.push((i === 0 && first !== undefined ? first : indent) + line),
    );
  }
  return out.join('\n');
}
