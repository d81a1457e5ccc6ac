/**
 * One BPF object's life, as libbpf's skeletons run it: open → configure (map sizes, read-only data) → load (again
 * from the start if the verifier was interrupted) → map what user space reads and attach → close. Everything
 * acquired along the way is owned here and released by `close()`, the one cleanup path, in reverse order.
 */
import { performance } from 'node:perf_hooks';
import { BpfError, CAPABILITY_HELP } from './errors.js';
import { libbpfSays } from './native.js';
import type { Native, Pointer } from './native.js';
import { PROT_READ } from './native.js';
import { RingReader } from './ring.js';

export interface BpfObjectOptions {
  /** The compiled object (`.bpf.o`). */
  readonly path: string;
  /** BTF to relocate CO-RE accesses against instead of the kernel's (e.g. a traced program's own types). */
  readonly btfCustomPath?: string;
  /** Map sizes and read-only data, before the kernel sees the program; run again on every load attempt. */
  configure(obj: BpfObject): void;
}

export interface AttachFailure {
  readonly errno: number;
  /** libbpf's last words on it. */
  readonly libbpf: string;
}

const EPERM = 1;
const EACCES = 13;
const EAGAIN = 11;
const LOAD_ATTEMPTS = 5;

export class BpfObject {
  /** What to undo, in acquisition order; `close()` runs it backwards. */
  private readonly _acquired: (() => void)[] = [];
  /** Attached probes, apart from the rest: they are detached first, and may be detached asynchronously. */
  private readonly _links: Pointer[] = [];
  /** A link being detached on a worker thread: libbpf must not free the object under it. */
  private _detaching = false;
  private _closeAfterDetach = false;

  private constructor(
    private readonly _native: Native,
    private readonly _obj: Pointer,
    readonly path: string,
  ) {
    this._acquired.push(() => _native.bpf.objectClose(_obj));
  }

  /**
   * Open, configure and load the object. The verifier gives up with EAGAIN when a signal arrives while it works
   * (a profiler's SIGPROF, a SIGCHLD): an object cannot be loaded twice, so it is opened again and retried.
   */
  static load(native: Native, opts: BpfObjectOptions): BpfObject {
    for (let attempt = 1; ; attempt++) {
      const obj = BpfObject._open(native, opts);
      let rc: number;
      try {
        opts.configure(obj);
        rc = native.bpf.objectLoad(obj._obj);
      } catch (err) {
        obj.close();
        throw err;
      }
      if (rc >= 0) return obj;
      const said = libbpfSays(native);
      obj.close();
      const errno = -rc;
      if (errno === EPERM || errno === EACCES)
        throw new BpfError(
          `the kernel refused to load the BPF program (permission denied): ${CAPABILITY_HELP}. Kernel lockdown ` +
            'or a seccomp profile that blocks bpf() also cause this.',
        );
      if (errno !== EAGAIN || attempt >= LOAD_ATTEMPTS)
        throw new BpfError(`loading the BPF program failed (errno ${errno}): ${said}`);
    }
  }

  private static _open(native: Native, opts: BpfObjectOptions): BpfObject {
    native.takeMessages();
    const ptr = native.bpf.objectOpenFile(opts.path, opts.btfCustomPath);
    if (ptr === null)
      throw new BpfError(
        `cannot open the BPF object ${opts.path} (errno ${native.errno()}): ${libbpfSays(native)}; reinstall ` +
          'h2o-otel, or rebuild it with `npm run build:bpf`',
      );
    return new BpfObject(native, ptr, opts.path);
  }

  /** Before load: the number of entries of map `name` (for a ring buffer, its bytes). */
  setMaxEntries(name: string, n: number): void {
    if (this._native.bpf.mapSetMaxEntries(this._map(name), n) !== 0)
      throw new BpfError(`${name} map: size ${n} rejected: ${libbpfSays(this._native)}`);
  }

  /** Before load: the object's read-only globals (`const volatile`), to be written, at least `bytes` long. */
  rodata(bytes: number): Buffer {
    const init = this._native.bpf.mapInitialValue(this._map('.rodata'));
    if (init.ptr === null || init.size < bytes)
      throw new BpfError(`${this.path}: unexpected .rodata layout (rebuild with npm run build:bpf)`);
    return Buffer.from(this._native.view(init.ptr, init.size));
  }

  /**
   * After load: the live contents of global-data map `name` (`.bss`), `bytes` long, read-only. libbpf 1.1 remaps
   * global data to the kernel's map only for skeletons, so it is mapped here. `what` names it in the error.
   */
  mapGlobal(name: string, bytes: number, what: string): Buffer {
    const fd = this._native.bpf.mapFd(this._map(name));
    const len = Math.ceil(bytes / this._native.libc.pageSize()) * this._native.libc.pageSize();
    const ptr = this._native.libc.mmap(len, PROT_READ, fd, 0);
    if (ptr === null) throw new BpfError(`cannot map ${what} (errno ${this._native.errno()})`);
    this._acquired.push(() => this._native.libc.munmap(ptr, len));
    return Buffer.from(this._native.view(ptr, bytes));
  }

  /** After load: a reader of ring-buffer map `name`, of `bytes` (as set before load). */
  ring(name: string, bytes: number): RingReader {
    const ring = new RingReader(this._native, this._native.bpf.mapFd(this._map(name)), bytes);
    this._acquired.push(() => ring.close());
    return ring;
  }

  /** After load: insert or replace one element of map `name`; `what` names the map's job in the error. */
  updateMap(name: string, key: Buffer, value: Buffer, what: string): void {
    const rc = this._native.bpf.mapUpdate(this._map(name), key, value);
    if (rc !== 0)
      throw new BpfError(
        `cannot fill ${what} (errno ${-rc}): ${libbpfSays(this._native)}; rebuild the BPF object with ` +
          '`npm run build:bpf`',
      );
  }

  /** After load: the program `name`, to attach. */
  program(name: string): Pointer {
    const prog = this._native.bpf.findProgram(this._obj, name);
    if (prog === null) throw new BpfError(`${this.path} has no ${name} program`);
    return prog;
  }

  /**
   * Attach `prog` to USDT probe `provider:name` of `binary` (in process `pid`, or -1: every process running it,
   * later ones too), with `cookie` for the program to tell probes apart. Undefined when attached.
   */
  attachUsdt(
    prog: Pointer,
    pid: number,
    binary: string,
    provider: string,
    name: string,
    cookie: number,
  ): AttachFailure | undefined {
    this._native.takeMessages();
    const link = this._native.bpf.attachUsdt(prog, pid, binary, provider, name, cookie);
    if (link === null) return { errno: this._native.errno(), libbpf: libbpfSays(this._native) };
    this._links.push(link);
    return undefined;
  }

  /** Attach `prog` at the entry of function `funcName` of `binary` (in process `pid`, or -1). Undefined when attached. */
  attachUprobe(prog: Pointer, pid: number, binary: string, funcName: string): AttachFailure | undefined {
    this._native.takeMessages();
    const link = this._native.bpf.attachUprobe(prog, pid, binary, funcName);
    if (link === null) return { errno: this._native.errno(), libbpf: libbpfSays(this._native) };
    this._links.push(link);
    return undefined;
  }

  /** Attached probes not yet detached. */
  get links(): number {
    return this._links.length;
  }

  /**
   * Detach probes, newest first, on a worker thread, so the event loop goes on (spans flush) meanwhile; stop when
   * all are detached or the next one, taking as long as the slowest so far, would end after `deadline`
   * (`performance.now()` ms). One at a time: the kernel detaches one uprobe at a time whatever the threads (48
   * links took 8.9 s one by one, 8.4 s on 4 threads, 7.6 s on 64), and libbpf's USDT links share state of the
   * object that is not thread-safe. Resolves to how many were detached.
   */
  async detachLinks(deadline: number): Promise<number> {
    let detached = 0;
    let slowest = 0;
    this._detaching = true;
    try {
      while (this._links.length > 0 && !this._closeAfterDetach && performance.now() + slowest < deadline) {
        const began = performance.now();
        await this._native.bpf.linkDestroyAsync(this._links.pop()!);
        slowest = Math.max(slowest, performance.now() - began);
        detached++;
      }
    } finally {
      this._detaching = false;
    }
    if (this._closeAfterDetach) this.close();
    return detached;
  }

  /**
   * Detach, unmap and free everything, newest first. Slow with many probes: the kernel waits for an RCU grace
   * period per probe, one after another (about 0.1 s each on 6.18). During `detachLinks()`, done when it returns.
   */
  close(): void {
    if (this._detaching) {
      this._closeAfterDetach = true;
      return;
    }
    for (let link = this._links.pop(); link !== undefined; link = this._links.pop())
      this._native.bpf.linkDestroy(link);
    for (let undo = this._acquired.pop(); undo !== undefined; undo = this._acquired.pop()) undo();
  }

  private _map(name: string): Pointer {
    const map = this._native.bpf.findMap(this._obj, name);
    if (map === null) throw new BpfError(`${this.path} is not h2o-otel's BPF program (no ${name} map)`);
    return map;
  }
}
