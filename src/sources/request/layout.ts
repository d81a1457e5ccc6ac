/**
 * Resolves field paths such as `st_h2o_req_t.timestamps.response_end_at` to byte offsets and sizes in one build's
 * BTF, so the BPF program reads H2O's structs by field name whatever the release: the offsets are data written to
 * the program's `.rodata` before load, never constants in code.
 */
import { readFileSync } from 'node:fs';
import { BpfError } from '../bpf/errors.js';
import { type Btf, BTF_KIND, type BtfMember, type BtfType, parseBtf, resolveAlias, sizeOf } from './btf.js';

export interface FieldLayout {
  /** Bytes from the start of the path's first struct. */
  readonly offset: number;
  readonly size: number;
  /** A one-bit flag: its bit in the byte at `offset` (least significant first, as x86 lays bitfields out). */
  readonly bit?: number;
}

/** Field path → where it is. */
export type Layout = Readonly<Record<string, FieldLayout>>;

/** A field (or struct) this build lacks; `missing` lists the paths, for a caller that would rather drop them. */
export class LayoutError extends BpfError {
  constructor(
    message: string,
    readonly missing: readonly string[],
  ) {
    super(message);
  }
}

/** The layout of a BTF file's fields; see resolveLayout. */
export function readLayout(
  btfPath: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Layout {
  return resolveLayout(parseBtf(readFileSync(btfPath), btfPath), required, optional);
}

/**
 * Every path in `required` and those of `optional` this build has. A path is `struct.field[.field…]`, the struct
 * named by its tag (`st_h2o_req_t`) or a typedef of it; fields of anonymous members are found as if they were the
 * parent's; a struct named alone (`st_h2o_header_t`) gives its size at offset 0; a one-bit flag gives its byte and
 * bit. A missing required field throws a LayoutError naming it and what the struct has instead; a wider bitfield,
 * or a step through a pointer, throws whichever list it is in.
 */
export function resolveLayout(
  btf: Btf,
  required: readonly string[],
  optional: readonly string[] = [],
): Layout {
  const structs = structsByName(btf);
  const layout: Record<string, FieldLayout> = {};
  const missing: string[] = [];
  const reasons: string[] = [];
  for (const [paths, needed] of [
    [required, true],
    [optional, false],
  ] as const) {
    for (const path of paths) {
      const found = resolvePath(btf, structs, path);
      if (typeof found !== 'string') layout[path] = found;
      else if (needed) {
        missing.push(path);
        reasons.push(found);
      }
    }
  }
  if (missing.length > 0)
    throw new LayoutError(`this build's debug info lacks ${reasons.join('; ')}`, missing);
  return layout;
}

/**
 * The layout, or why the path is missing (a string). `a.b->c` names field `c` of the struct `a.b` points to, at its
 * offset in that struct: for a struct whose name changed between releases (`st_h2o_socket_peername_t` in 2.2.5,
 * `st_h2o_socket_addr_t` in master), found through the field that points to it.
 */
function resolvePath(btf: Btf, structs: Map<string, BtfType>, path: string): FieldLayout | string {
  const [structName = '', ...fields] = path.replace(/->/g, '.*').split('.');
  let type = structs.get(structName);
  if (type === undefined) return `struct ${structName} (needed for ${path})`;
  // A struct named alone: its size, e.g. the stride of an array of it.
  if (fields.length === 0) return { offset: 0, size: type.size };
  let bits = 0;
  let where = structName;
  for (let i = 0; i < fields.length; i++) {
    const step = fields[i] ?? '';
    const name = step.startsWith('*') ? step.slice(1) : step;
    const found = findMember(btf, type, name, 0);
    if (found === undefined)
      return `field ${where}.${name} (${where} has: ${memberNames(btf, type).join(', ')})`;
    const { member, bitOffset } = found;
    where = `${where}.${name}`;
    bits += bitOffset;
    const memberType = resolveAlias(btf, member.type);
    const last = i === fields.length - 1;
    if (isBitfield(member, memberType, bits)) {
      if (last && bitfieldWidth(member, memberType) === 1)
        return { offset: bits >> 3, size: 1, bit: bits & 7 };
      throw new BpfError(`${where} is a bitfield wider than one bit, which cannot be read by offset`);
    }
    if (last) return { offset: bits / 8, size: sizeOf(btf, member.type) };
    if (memberType.kind === BTF_KIND.PTR) {
      if (!(fields[i + 1] ?? '').startsWith('*'))
        throw new BpfError(
          `${where} is a pointer: name a field of what it points to as ${where}->field, or by that struct's name`,
        );
      // Offsets start again in the struct pointed to.
      type = resolveAlias(btf, memberType.ref);
      bits = 0;
      if (type.kind !== BTF_KIND.STRUCT && type.kind !== BTF_KIND.UNION)
        throw new BpfError(`${where} points to no struct, so ${path} names nothing`);
      continue;
    }
    if (memberType.kind !== BTF_KIND.STRUCT && memberType.kind !== BTF_KIND.UNION) {
      throw new BpfError(`${where} is not a struct or union, so ${path} names nothing`);
    }
    type = memberType;
  }
  throw new BpfError(`field path ${path} names no field`);
}

/** Complete structs and unions by tag, and typedef names that lead to one; the first definition wins. */
function structsByName(btf: Btf): Map<string, BtfType> {
  const byName = new Map<string, BtfType>();
  const typedefs: BtfType[] = [];
  for (const t of btf.types) {
    if (t.name === '') continue;
    if ((t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION) && !byName.has(t.name))
      byName.set(t.name, t);
    else if (t.kind === BTF_KIND.TYPEDEF) typedefs.push(t);
  }
  for (const t of typedefs) {
    if (byName.has(t.name)) continue;
    const target = resolveAlias(btf, t.ref);
    if (target.kind === BTF_KIND.STRUCT || target.kind === BTF_KIND.UNION) byName.set(t.name, target);
  }
  return byName;
}

function findMember(
  btf: Btf,
  type: BtfType,
  name: string,
  depth: number,
): { member: BtfMember; bitOffset: number } | undefined {
  for (const m of type.members) if (m.name === name) return { member: m, bitOffset: m.bitOffset };
  if (depth > 8) return undefined;
  for (const m of type.members) {
    if (m.name !== '') continue;
    const inner = resolveAlias(btf, m.type);
    const found = findMember(btf, inner, name, depth + 1);
    if (found !== undefined) return { member: found.member, bitOffset: m.bitOffset + found.bitOffset };
  }
  return undefined;
}

function memberNames(btf: Btf, type: BtfType): string[] {
  const names: string[] = [];
  for (const m of type.members) {
    if (m.name !== '') names.push(m.name);
    else names.push(...memberNames(btf, resolveAlias(btf, m.type)));
  }
  return names.length > 40 ? [...names.slice(0, 40), '…'] : names;
}

/** A bitfield member's width: from the member (BTF's kind_flag encoding) or from its int type. */
function bitfieldWidth(member: BtfMember, type: BtfType): number {
  return member.bitfieldSize !== 0 ? member.bitfieldSize : type.intBits;
}

function isBitfield(member: BtfMember, type: BtfType, bits: number): boolean {
  if (member.bitfieldSize !== 0 || bits % 8 !== 0) return true;
  return type.kind === BTF_KIND.INT && type.intBits !== type.size * 8;
}
