/**
 * A span's attributes as two parallel arrays, keys and values, in the order an `Attributes` object would list
 * them. Keys are interned (`AttrKey`: the name and a small id), so the encoder finds a key's encoded bytes by id
 * in an array instead of hashing its name, and mapping a span allocates no object with a property per attribute.
 * The object form is built only when something reads `FinishedSpan.attributes` (console, samplers, tests).
 */
import type { Attributes, AttributeValue } from '@opentelemetry/api';

export interface AttrKey {
  readonly name: string;
  /** Dense from 0 for interned keys; -1 for a name met after the registry filled up. */
  readonly id: number;
}

/** Interned keys kept at most: the fixed keys plus H2O's header and statistics names are a few hundred. */
const MAX_KEYS = 4096;
const registry = new Map<string, AttrKey>();

/** The interned key of `name`; past the bound, a key of its own that the encoder encodes every time. */
export function attrKey(name: string): AttrKey {
  let key = registry.get(name);
  if (key === undefined) {
    if (registry.size >= MAX_KEYS) return { name, id: -1 };
    key = { name, id: registry.size };
    registry.set(name, key);
  }
  return key;
}

export class AttributeList {
  readonly keys: AttrKey[] = [];
  /** Undefined is kept, as an object keeps a property set to undefined. */
  readonly values: (AttributeValue | undefined)[] = [];
  /** The object form, built on first read, dropped on any write. */
  private _object: Attributes | undefined;

  /** The list of an object's attributes, in its order. */
  static from(attributes: Attributes): AttributeList {
    const list = new AttributeList();
    list.assign(attributes);
    return list;
  }

  /** Adds a key the list does not hold yet (the caller knows it is the first write). */
  push(key: AttrKey, value: AttributeValue | undefined): void {
    this.keys.push(key);
    this.values.push(value);
    this._object = undefined;
  }

  /** Writes a key that may be there already: it keeps its first position, as an object property does. */
  set(key: AttrKey, value: AttributeValue | undefined): void {
    const i = this._indexOf(key);
    if (i < 0) return this.push(key, value);
    this.values[i] = value;
    this._object = undefined;
  }

  get(key: AttrKey): AttributeValue | undefined {
    const i = this._indexOf(key);
    return i < 0 ? undefined : this.values[i];
  }

  /** Every attribute of `attributes`, in its order, written with `set`: `Object.assign` (a sampler's additions). */
  assign(attributes: Attributes): void {
    for (const name in attributes) this.set(attrKey(name), attributes[name]);
  }

  toAttributes(): Attributes {
    if (this._object !== undefined) return this._object;
    const a: Attributes = {};
    for (let i = 0; i < this.keys.length; i++) a[this.keys[i]!.name] = this.values[i];
    return (this._object = a);
  }

  private _indexOf(key: AttrKey): number {
    const keys = this.keys;
    // By name when the key is not interned: an overflow key is a new object each time.
    if (key.id < 0) {
      for (let i = 0; i < keys.length; i++) if (keys[i]!.name === key.name) return i;
      return -1;
    }
    return keys.indexOf(key);
  }
}
