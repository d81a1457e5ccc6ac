/**
 * Lists the USDT probes an executable declares (`.note.stapsdt`), so h2o-otel can say before attaching that H2O
 * was built without DTrace, which probes this build lacks, and which argument specs libbpf 1.1 cannot read
 * (see probe-selection.ts).
 * Reads only the ELF headers and the note section, not the whole (large) binary.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface UsdtNote {
  readonly provider: string;
  readonly name: string;
  /** Argument specs, e.g. `8@%rdi -4@-12(%rbp)`. */
  readonly args: string;
  readonly semaphore: bigint;
}

export class ElfError extends Error {}

const NT_STAPSDT = 3;

function read(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, offset);
  if (n !== length) throw new ElfError('truncated ELF file');
  return buf;
}

export function readUsdtNotes(path: string): UsdtNote[] {
  const fd = openSync(path, 'r');
  try {
    const eh = read(fd, 0, 64);
    if (eh.readUInt32BE(0) !== 0x7f454c46) throw new ElfError(`${path} is not an ELF executable`);
    if (eh[4] !== 2 || eh[5] !== 1) throw new ElfError(`${path} is not a 64-bit little-endian ELF file`);
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    const shstrndx = eh.readUInt16LE(0x3e);
    if (shoff === 0 || shnum === 0) return [];
    const sh = read(fd, shoff, shentsize * shnum);
    const section = (i: number): { name: number; offset: number; size: number } => ({
      name: sh.readUInt32LE(i * shentsize),
      offset: Number(sh.readBigUInt64LE(i * shentsize + 0x18)),
      size: Number(sh.readBigUInt64LE(i * shentsize + 0x20)),
    });
    const strtab = section(shstrndx);
    const names = read(fd, strtab.offset, strtab.size);
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      const end = names.indexOf(0, s.name);
      if (names.toString('latin1', s.name, end) !== '.note.stapsdt') continue;
      return parseNotes(read(fd, s.offset, s.size));
    }
    return [];
  } finally {
    closeSync(fd);
  }
}

function parseNotes(buf: Buffer): UsdtNote[] {
  const notes: UsdtNote[] = [];
  let off = 0;
  const align4 = (n: number): number => (n + 3) & ~3;
  while (off + 12 <= buf.length) {
    const namesz = buf.readUInt32LE(off);
    const descsz = buf.readUInt32LE(off + 4);
    const type = buf.readUInt32LE(off + 8);
    const nameOff = off + 12;
    const descOff = nameOff + align4(namesz);
    off = descOff + align4(descsz);
    if (type !== NT_STAPSDT || descsz < 24 || descOff + descsz > buf.length) continue;
    const desc = buf.subarray(descOff, descOff + descsz);
    const strings = desc.toString('latin1', 24).split('\0');
    notes.push({
      provider: strings[0] ?? '',
      name: strings[1] ?? '',
      args: strings[2] ?? '',
      semaphore: desc.readBigUInt64LE(16),
    });
  }
  return notes;
}
