/**
 * Reads a BPF ring buffer map directly from its memory mapping: no callback per record, no system call per drain.
 * The kernel layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (ours to write); the next page the
 * producer position; then the data area, mapped twice in a row so a record that wraps is still contiguous.
 * Each record starts with an 8-byte header: a u32 length whose top bits say BUSY (still being written) and
 * DISCARD, then a u32 page offset; records are 8-byte aligned.
 */
import { BpfError } from './errors.js';
import type { Native, Pointer } from './native.js';
import { PROT_READ, PROT_WRITE } from './native.js';

const BUSY = 0x8000_0000;
const DISCARD = 0x4000_0000;
const LENGTH = 0x3fff_ffff;
const HEADER = 8;

export class RingReader {
  private readonly _consumer: Pointer;
  private readonly _producer: Pointer;
  private readonly _cons: BigUint64Array;
  private readonly _prod: BigUint64Array;
  private readonly _data: Buffer;
  private readonly _mask: number;
  private readonly _page: number;
  private _closed = false;

  constructor(
    private readonly _native: Native,
    fd: number,
    readonly size: number,
  ) {
    const page = _native.libc.pageSize();
    this._page = page;
    const consumer = _native.libc.mmap(page, PROT_READ | PROT_WRITE, fd, 0);
    if (consumer === null)
      throw new BpfError(`mmap of the ring buffer's consumer page failed (errno ${_native.errno()})`);
    const producer = _native.libc.mmap(page + 2 * size, PROT_READ, fd, page);
    if (producer === null) {
      _native.libc.munmap(consumer, page);
      throw new BpfError(`mmap of the ring buffer's data failed (errno ${_native.errno()})`);
    }
    this._consumer = consumer;
    this._producer = producer;
    this._cons = new BigUint64Array(_native.view(consumer, 8));
    this._prod = new BigUint64Array(_native.view(producer, 8));
    this._data = Buffer.from(_native.view(producer, page + 2 * size), page, 2 * size);
    this._mask = size - 1;
  }

  /** Bytes written by BPF and not yet consumed. */
  pending(): number {
    if (this._closed) return 0;
    return Number(this._prod[0]! - this._cons[0]!);
  }

  /**
   * Hand every committed record to `onRecord(data, offset, length)`, at most `maxRecords`, then release their space
   * to the producer. Stops at a record still being written. Returns the number of records read.
   */
  drain(onRecord: (data: Buffer, offset: number, length: number) => void, maxRecords: number): number {
    if (this._closed) return 0;
    // Positions are exact as numbers below 2^53 bytes, i.e. always in practice.
    let cons = Number(this._cons[0]!);
    const prod = Number(this._prod[0]!);
    const data = this._data;
    let n = 0;
    while (cons < prod && n < maxRecords) {
      const off = cons & this._mask;
      const hdr = data.readUInt32LE(off);
      if ((hdr & BUSY) !== 0) break;
      const len = hdr & LENGTH;
      if ((hdr & DISCARD) === 0) {
        onRecord(data, off + HEADER, len);
        n++;
      }
      cons += (len + HEADER + 7) & ~7;
    }
    // One 64-bit store: the kernel must never see a half-updated position.
    this._cons[0] = BigInt(cons);
    return n;
  }

  close(): void {
    if (this._closed) return;
    this._closed = true;
    this._native.libc.munmap(this._consumer, this._page);
    this._native.libc.munmap(this._producer, this._page + 2 * this.size);
  }
}
