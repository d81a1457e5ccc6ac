/**
 * The system libbpf (libbpf.so.1) and the few libc calls the BPF sources need, through koffi: the only module that
 * imports it, so the socket and replay sources never touch native code. libbpf's own messages are captured (not
 * printed) and attached to the errors that need them.
 */
import koffi from 'koffi';
import { BpfError } from './errors.js';

export type Pointer = bigint;

export interface Native {
  readonly bpf: {
    /** `btfCustomPath`: relocate CO-RE accesses against this BTF instead of the kernel's. */
    objectOpenFile(path: string, btfCustomPath: string | undefined): Pointer | null;
    objectLoad(obj: Pointer): number;
    objectClose(obj: Pointer): void;
    findMap(obj: Pointer, name: string): Pointer | null;
    findProgram(obj: Pointer, name: string): Pointer | null;
    mapSetMaxEntries(map: Pointer, n: number): number;
    mapFd(map: Pointer): number;
    /** Pointer to the map's mmapped data (global-data maps), and its size. */
    mapInitialValue(map: Pointer): { ptr: Pointer | null; size: number };
    /** Insert or replace one element of a loaded map: 0, or a negative errno. */
    mapUpdate(map: Pointer, key: Buffer, value: Buffer): number;
    attachUsdt(
      prog: Pointer,
      pid: number,
      path: string,
      provider: string,
      name: string,
      cookie: number,
    ): Pointer | null;
    /** Uprobe at the entry of function `funcName` of `path` (in process `pid`, or -1: every process). */
    attachUprobe(prog: Pointer, pid: number, path: string, funcName: string): Pointer | null;
    linkDestroy(link: Pointer): void;
    /** The same on a worker thread of libuv's pool, so the event loop goes on meanwhile. */
    linkDestroyAsync(link: Pointer): Promise<void>;
  };
  readonly libc: {
    mmap(len: number, prot: number, fd: number, offset: number): Pointer | null;
    munmap(addr: Pointer, len: number): void;
    /** CLOCK_REALTIME and CLOCK_MONOTONIC in ns, read back to back. */
    clocks(): { realtime: bigint; monotonic: bigint };
    pageSize(): number;
  };
  /** `len` bytes of native memory at `ptr`, without a copy. */
  view(ptr: Pointer, len: number): ArrayBuffer;
  /** errno of the last native call. */
  errno(): number;
  /** libbpf messages since the last call (cleared). */
  takeMessages(): string[];
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;

let cached: Native | undefined;

export function loadNative(): Native {
  if (cached !== undefined) return cached;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load('libbpf.so.1');
  } catch (err) {
    throw new BpfError(
      `cannot load libbpf.so.1 (${(err as Error).message.split('\n')[0]}): install it with ` +
        '`apt-get install libbpf1` (Debian 12 / Ubuntu 22.04 and later ship libbpf 1.x)',
    );
  }
  const libc = koffi.load('libc.so.6');
  koffi.opaque('bpf_object');
  koffi.struct('bpf_usdt_opts', { sz: 'size_t', usdt_cookie: 'uint64_t' });
  // libbpf 1.1's struct bpf_uprobe_opts, whole: libbpf resolves `func_name` in the ELF symbols itself.
  const uprobeOpts = koffi.struct('h2o_otel_uprobe_opts', {
    sz: 'size_t',
    ref_ctr_offset: 'size_t',
    bpf_cookie: 'uint64_t',
    retprobe: 'bool',
    func_name: 'const char *',
  });
  // libbpf 1.1's struct up to btf_custom_path; a smaller `sz` tells libbpf the rest is unset.
  const openOpts = koffi.struct('h2o_otel_object_open_opts', {
    sz: 'size_t',
    object_name: 'const char *',
    relaxed_maps: 'bool',
    pin_root_path: 'const char *',
    attach_prog_fd: 'uint32_t',
    kconfig: 'const char *',
    btf_custom_path: 'const char *',
  });
  koffi.struct('h2o_otel_timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });
  const printFn = koffi.proto('int h2o_otel_libbpf_print_fn(int level, const char *fmt, void *ap)');

  const openFile = lib.func(
    'void *bpf_object__open_file(const char *path, const h2o_otel_object_open_opts *opts)',
  );
  const load = lib.func('int bpf_object__load(void *obj)');
  const close = lib.func('void bpf_object__close(void *obj)');
  const findMap = lib.func('void *bpf_object__find_map_by_name(void *obj, const char *name)');
  const findProg = lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)');
  const setMax = lib.func('int bpf_map__set_max_entries(void *map, uint32_t n)');
  const mapFd = lib.func('int bpf_map__fd(void *map)');
  const initialValue = lib.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)');
  const mapUpdate = lib.func(
    'int bpf_map__update_elem(void *map, const uint8_t *key, size_t key_sz, const uint8_t *value, size_t value_sz, uint64_t flags)',
  );
  const attachUsdt = lib.func(
    'void *bpf_program__attach_usdt(void *prog, int pid, const char *path, const char *provider, const char *name, const bpf_usdt_opts *opts)',
  );
  const attachUprobe = lib.func(
    'void *bpf_program__attach_uprobe_opts(void *prog, int pid, const char *binary_path, size_t func_offset, const h2o_otel_uprobe_opts *opts)',
  );
  const linkDestroy = lib.func('int bpf_link__destroy(void *link)');
  const setPrint = lib.func('void *libbpf_set_print(h2o_otel_libbpf_print_fn *fn)');
  const mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
  const munmap = libc.func('int munmap(void *addr, size_t len)');
  const clockGettime = libc.func('int clock_gettime(int clk, _Out_ h2o_otel_timespec *ts)');
  const sysconf = libc.func('long sysconf(int name)');
  const vsnprintf = libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t n, const char *fmt, void *ap)');

  const messages: string[] = [];
  const text = Buffer.alloc(2048);
  // Registered once for the life of the process: libbpf keeps the pointer.
  const printer = koffi.register((_level: number, fmt: string, ap: unknown) => {
    const n = vsnprintf(text, text.length, fmt, ap) as number;
    const line = text
      .subarray(0, Math.max(0, Math.min(n, text.length - 1)))
      .toString('utf8')
      .trimEnd();
    if (line !== '' && messages.length < 200) messages.push(line);
    return 0;
  }, koffi.pointer(printFn));
  setPrint(printer);

  const MAP_SHARED = 1;
  const MAP_FAILED = (1n << 64n) - 1n;
  const ts = (clk: number): bigint => {
    const out = { tv_sec: 0n, tv_nsec: 0n };
    clockGettime(clk, out);
    return BigInt(out.tv_sec) * 1_000_000_000n + BigInt(out.tv_nsec);
  };

  cached = {
    bpf: {
      objectOpenFile: (path, btfCustomPath) =>
        openFile(
          path,
          btfCustomPath === undefined ? null : { sz: koffi.sizeof(openOpts), btf_custom_path: btfCustomPath },
        ) as Pointer | null,
      objectLoad: (obj) => load(obj) as number,
      objectClose: (obj) => void close(obj),
      findMap: (obj, name) => findMap(obj, name) as Pointer | null,
      findProgram: (obj, name) => findProg(obj, name) as Pointer | null,
      mapSetMaxEntries: (map, n) => setMax(map, n) as number,
      mapFd: (map) => mapFd(map) as number,
      mapInitialValue: (map) => {
        const size = [0];
        const ptr = initialValue(map, size) as Pointer | null;
        return { ptr, size: Number(size[0]) };
      },
      mapUpdate: (map, key, value) => mapUpdate(map, key, key.length, value, value.length, 0) as number,
      attachUsdt: (prog, pid, path, provider, name, cookie) =>
        attachUsdt(prog, pid, path, provider, name, { sz: 16, usdt_cookie: cookie }) as Pointer | null,
      attachUprobe: (prog, pid, path, funcName) =>
        attachUprobe(prog, pid, path, 0, {
          sz: koffi.sizeof(uprobeOpts),
          ref_ctr_offset: 0,
          bpf_cookie: 0,
          retprobe: false,
          func_name: funcName,
        }) as Pointer | null,
      linkDestroy: (link) => void linkDestroy(link),
      linkDestroyAsync: (link) =>
        new Promise<void>(
          (resolve, reject) =>
            void linkDestroy.async(link, (err: unknown) => {
              if (err === null || err === undefined) resolve();
              else reject(err instanceof Error ? err : new Error('bpf_link__destroy failed'));
            }),
        ),
    },
    libc: {
      mmap: (len, prot, fd, offset) => {
        const p = mmap(null, len, prot, MAP_SHARED, fd, offset) as Pointer | null;
        return p === null || BigInt.asUintN(64, p) === MAP_FAILED ? null : p;
      },
      munmap: (addr, len) => void munmap(addr, len),
      clocks: () => {
        // Monotonic read between two realtime reads: the offset error is at most half the gap.
        const r1 = ts(0);
        const m = ts(1);
        const r2 = ts(0);
        return { realtime: (r1 + r2) / 2n, monotonic: m };
      },
      pageSize: () => Number(sysconf(30 /* _SC_PAGESIZE */)),
    },
    view: (ptr, len) => koffi.view(ptr, len),
    errno: () => koffi.errno(),
    takeMessages: () => messages.splice(0),
  };
  return cached;
}

/** The last few libbpf messages since the last call, for an error message. */
export function libbpfSays(native: Native): string {
  const lines = native.takeMessages().filter((l) => !/^libbpf: (loading|elf: skipping)/.test(l));
  return lines.length === 0 ? 'no detail from libbpf' : lines.slice(-3).join(' / ');
}
