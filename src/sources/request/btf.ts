/**
 * A reader of the BTF format (the kernel's Documentation/bpf/btf.rst), enough to walk structs by field name: pahole
 * writes it from DWARF, and its layout is a short header, an array of types and a string table. Read here in
 * TypeScript rather than through libbpf's BTF API because it is pure data: no native call, no pointer walking through
 * FFI, testable on plain buffers, and the same on every libbpf version.
 */
import { BpfError } from '../bpf/errors.js';

export const BTF_KIND = {
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export interface BtfMember {
  readonly name: string;
  readonly type: number;
  readonly bitOffset: number;
  /** Non-zero for a bitfield. */
  readonly bitfieldSize: number;
}

export interface BtfType {
  readonly kind: number;
  readonly name: string;
  /** Byte size for INT, STRUCT, UNION, ENUM, ENUM64, FLOAT, DATASEC; 0 otherwise. */
  readonly size: number;
  /** The referred type for PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG, FUNC, VAR; the element for ARRAY. */
  readonly ref: number;
  /** STRUCT and UNION members; empty otherwise. */
  readonly members: readonly BtfMember[];
  /** ARRAY element count. */
  readonly count: number;
  /** INT width in bits (less than size * 8 for a bitfield's int). */
  readonly intBits: number;
}

/** Types by id; id 0 is void. */
export interface Btf {
  readonly types: readonly BtfType[];
}

const MAGIC = 0xeb9f;
const VOID: BtfType = { kind: 0, name: 'void', size: 0, ref: 0, members: [], count: 0, intBits: 0 };
const POINTER_SIZE = 8;

export function parseBtf(buf: Buffer, source = 'BTF'): Btf {
  try {
    return parseTypes(buf, source);
  } catch (err) {
    // A read past the end of a cut or corrupt file: the same error as every other malformed BTF.
    if (err instanceof RangeError) throw new BpfError(`${source}: truncated or corrupt BTF`);
    throw err;
  }
}

function parseTypes(buf: Buffer, source: string): Btf {
  if (buf.length < 24) throw new BpfError(`${source}: too short for a BTF header`);
  const magic = buf.readUInt16LE(0);
  if (magic !== MAGIC) {
    throw new BpfError(
      magic === 0x9feb
        ? `${source}: big-endian BTF is not supported`
        : `${source}: not a BTF file (bad magic)`,
    );
  }
  const hdrLen = buf.readUInt32LE(4);
  const typeOff = hdrLen + buf.readUInt32LE(8);
  const typeEnd = typeOff + buf.readUInt32LE(12);
  const strOff = hdrLen + buf.readUInt32LE(16);
  const strEnd = strOff + buf.readUInt32LE(20);
  if (typeEnd > buf.length || strEnd > buf.length) throw new BpfError(`${source}: truncated BTF`);
  const str = (off: number): string => {
    if (off === 0) return '';
    const at = strOff + off;
    const end = buf.indexOf(0, at);
    return buf.toString('utf8', at, end < 0 || end > strEnd ? strEnd : end);
  };

  const types: BtfType[] = [VOID];
  let p = typeOff;
  while (p < typeEnd) {
    if (p + 12 > typeEnd) throw new BpfError(`${source}: truncated type ${types.length}`);
    const name = str(buf.readUInt32LE(p));
    const info = buf.readUInt32LE(p + 4);
    const sizeOrType = buf.readUInt32LE(p + 8);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = info >>> 31 === 1;
    p += 12;
    let members: BtfMember[] = [];
    let count = 0;
    let intBits = 0;
    let ref = 0;
    let size = 0;
    switch (kind) {
      case BTF_KIND.INT:
        size = sizeOrType;
        intBits = buf.readUInt32LE(p) & 0xff;
        p += 4;
        break;
      case BTF_KIND.ARRAY:
        ref = buf.readUInt32LE(p);
        count = buf.readUInt32LE(p + 8);
        p += 12;
        break;
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION:
        size = sizeOrType;
        if (p + 12 * vlen > typeEnd) throw new BpfError(`${source}: truncated type ${types.length}`);
        members = new Array<BtfMember>(vlen);
        for (let i = 0; i < vlen; i++, p += 12) {
          const offset = buf.readUInt32LE(p + 8);
          members[i] = {
            name: str(buf.readUInt32LE(p)),
            type: buf.readUInt32LE(p + 4),
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          };
        }
        break;
      case BTF_KIND.ENUM:
        size = sizeOrType;
        p += 8 * vlen;
        break;
      case BTF_KIND.ENUM64:
        size = sizeOrType;
        p += 12 * vlen;
        break;
      case BTF_KIND.FUNC_PROTO:
        ref = sizeOrType;
        p += 8 * vlen;
        break;
      case BTF_KIND.DATASEC:
        size = sizeOrType;
        p += 12 * vlen;
        break;
      case BTF_KIND.VAR:
      case BTF_KIND.DECL_TAG:
        ref = sizeOrType;
        p += 4;
        break;
      case BTF_KIND.FLOAT:
        size = sizeOrType;
        break;
      case BTF_KIND.PTR:
      case BTF_KIND.FWD:
      case BTF_KIND.TYPEDEF:
      case BTF_KIND.VOLATILE:
      case BTF_KIND.CONST:
      case BTF_KIND.RESTRICT:
      case BTF_KIND.FUNC:
      case BTF_KIND.TYPE_TAG:
        ref = sizeOrType;
        break;
      default:
        throw new BpfError(`${source}: unknown BTF kind ${kind} at type ${types.length}`);
    }
    if (p > typeEnd) throw new BpfError(`${source}: truncated type ${types.length}`);
    types.push({ kind, name, size, ref, members, count, intBits });
  }
  return { types };
}

/** The type behind typedefs and qualifiers. */
export function resolveAlias(btf: Btf, id: number): BtfType {
  for (let hops = 0; hops < 64; hops++) {
    const t = btf.types[id];
    if (t === undefined) throw new BpfError(`BTF refers to a missing type ${id}`);
    switch (t.kind) {
      case BTF_KIND.TYPEDEF:
      case BTF_KIND.VOLATILE:
      case BTF_KIND.CONST:
      case BTF_KIND.RESTRICT:
      case BTF_KIND.TYPE_TAG:
        id = t.ref;
        break;
      default:
        return t;
    }
  }
  throw new BpfError(`BTF type ${id}: typedef chain too long`);
}

/** Size in bytes of a type (pointers: 8; this reads 64-bit binaries only). */
export function sizeOf(btf: Btf, id: number): number {
  const t = resolveAlias(btf, id);
  if (t.kind === BTF_KIND.PTR) return POINTER_SIZE;
  if (t.kind === BTF_KIND.ARRAY) return t.count * sizeOf(btf, t.ref);
  return t.size;
}
