/**
 * Reads the few ELF sections h2o-otel needs from an executable: the USDT probes it declares (`.note.stapsdt`), so
 * h2o-otel can say before attaching that H2O was built without DTrace, which probes this build lacks, and which
 * argument specs libbpf 1.1 cannot read (see probe-selection.ts); its build-id and whether (or where) it carries
 * DWARF, to find the struct layouts of the request probe (see ../request/debug-info.ts).
 * Reads only the ELF headers and the sections asked for, not the whole (large) binary.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface UsdtNote {
  readonly provider: string;
  readonly name: string;
  /** Argument specs, e.g. `8@%rdi -4@-12(%rbp)`. */
  readonly args: string;
  readonly semaphore: bigint;
}

export interface ElfSection {
  readonly name: string;
  /** `sh_type`; SHT_NOBITS (8) marks a section kept by name whose bytes were stripped. */
  readonly type: number;
  readonly size: number;
  /** The section's bytes, only for the sections asked for. */
  readonly data: Buffer | undefined;
}

export class ElfError extends Error {}

export const SHT_NOBITS = 8;
const NT_STAPSDT = 3;
const NT_GNU_BUILD_ID = 3;

function read(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  if (n !== length) throw new ElfError('truncated ELF file');
  return buf;
}

/** Every section by name (the first of a name wins), with the bytes of those named in `load`. */
export function readElfSections(path: string, load: readonly string[] = []): Map<string, ElfSection> {
  const sections = new Map<string, ElfSection>();
  const fd = openSync(path, 'r');
  try {
    const eh = read(fd, 0, 64);
    if (eh.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path} is not an ELF executable`);
    if (eh[4] !== 2 || eh[5] !== 1) throw new ElfError(`${path} is not a 64-bit little-endian ELF file`);
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    const shstrndx = eh.readUInt16LE(0x3e);
    if (shoff === 0 || shnum === 0) return sections;
    const sh = read(fd, shoff, shentsize * shnum);
    const header = (i: number): { name: number; type: number; offset: number; size: number } => ({
      name: sh.readUInt32LE(i * shentsize),
      type: sh.readUInt32LE(i * shentsize + 4),
      offset: Number(sh.readBigUInt64LE(i * shentsize + 0x18)),
      size: Number(sh.readBigUInt64LE(i * shentsize + 0x20)),
    });
    const strtab = header(shstrndx);
    const names = read(fd, strtab.offset, strtab.size);
    for (let i = 0; i < shnum; i++) {
      const s = header(i);
      const name = names.toString('latin1', s.name, names.indexOf(0, s.name));
      if (sections.has(name)) continue;
      const wanted = load.includes(name) && s.type !== SHT_NOBITS;
      sections.set(name, {
        name,
        type: s.type,
        size: s.size,
        data: wanted ? read(fd, s.offset, s.size) : undefined,
      });
    }
    return sections;
  } finally {
    closeSync(fd);
  }
}

export function readUsdtNotes(path: string): UsdtNote[] {
  const data = readElfSections(path, ['.note.stapsdt']).get('.note.stapsdt')?.data;
  if (data === undefined) return [];
  const notes: UsdtNote[] = [];
  for (const note of parseNotes(data)) {
    if (note.type !== NT_STAPSDT || note.desc.length < 24) continue;
    const strings = note.desc.toString('latin1', 24).split('\0');
    notes.push({
      provider: strings[0] ?? '',
      name: strings[1] ?? '',
      args: strings[2] ?? '',
      semaphore: note.desc.readBigUInt64LE(16),
    });
  }
  return notes;
}

/** The GNU build-id in hex (as in `/usr/lib/debug/.build-id/xx/rest.debug`), or undefined when it has none. */
export function readBuildId(path: string): string | undefined {
  const data = readElfSections(path, ['.note.gnu.build-id']).get('.note.gnu.build-id')?.data;
  if (data === undefined) return undefined;
  const note = parseNotes(data).find((n) => n.type === NT_GNU_BUILD_ID && n.owner === 'GNU');
  return note === undefined || note.desc.length === 0 ? undefined : note.desc.toString('hex');
}

function parseNotes(buf: Buffer): { owner: string; type: number; desc: Buffer }[] {
  const notes: { owner: string; type: number; desc: Buffer }[] = [];
  let off = 0;
  const align4 = (n: number): number => (n + 3) & ~3;
  while (off + 12 <= buf.length) {
    const namesz = buf.readUInt32LE(off);
    const descsz = buf.readUInt32LE(off + 4);
    const type = buf.readUInt32LE(off + 8);
    const nameOff = off + 12;
    const descOff = nameOff + align4(namesz);
    off = descOff + align4(descsz);
    if (descOff + descsz > buf.length) break;
    const owner = buf.toString('latin1', nameOff, nameOff + Math.max(0, namesz - 1));
    notes.push({ owner, type, desc: buf.subarray(descOff, descOff + descsz) });
  }
  return notes;
}
