/**
 * The request probe (native/h2o_request.bpf.o): one uprobe at the entry of `h2o_dispose_request` in one H2O
 * binary, with the field offsets of that build written into the program before load, and the records it sends
 * read from its ring buffer on demand.
 */
import { fileURLToPath } from 'node:url';
import type { UsedHeaderNames } from '../../events/types.js';
import { BpfObject } from '../bpf/bpf-object.js';
import { BpfError, EACCES, EPERM, UPROBE_PERMISSION_HELP } from '../bpf/errors.js';
import { loadNative } from '../bpf/native.js';
import type { RingReader } from '../bpf/ring.js';
import { headerNameEntries } from '../usdt/bpf-config.js';
import type { Layout } from './layout.js';
import {
  CONFIG_SIZE,
  COUNTERS_SIZE,
  readRequestCounters,
  type RequestProbeCounters,
  writeRequestConfig,
} from './request-config.js';

export const DEFAULT_REQUEST_OBJECT = fileURLToPath(
  new URL('../../../../native/h2o_request.bpf.o', import.meta.url),
);
export const DISPOSE_FUNCTION = 'h2o_dispose_request';
const DEFAULT_RING_BYTES = 4 << 20;

export interface RequestProbeOptions {
  /** The H2O executable (or shared object) holding `h2o_dispose_request`. */
  readonly binary: string;
  /** The process to trace, or -1 for every process running `binary`. */
  readonly pid: number;
  /** Offsets of this build's fields: every path of CONFIG_FIELDS (request-record.ts). */
  readonly layout: Layout;
  /** Header names some span uses: only these request headers are sent (all of them when absent or 'all'). */
  readonly usedHeaderNames?: UsedHeaderNames;
  readonly objectPath?: string;
  /** Ring buffer size: a power of two, a multiple of the page size. */
  readonly ringBytes?: number;
  /** The share of connections traced (0–1), decided in BPF; undefined: all. */
  readonly sampleRatio?: number;
  /** The tracer's pid namespace, so records carry pids as /proc here shows them. */
  readonly pidns?: { readonly dev: bigint; readonly ino: bigint };
}

export class RequestProbe {
  /** The program's counters: the live mapping while attached, a copy once closed. */
  private _counters: Buffer;

  private constructor(
    private readonly _obj: BpfObject,
    /** The records: one per wanted request header, then the request's (see RequestAssembler). */
    readonly ring: RingReader,
  ) {
    this._counters = _obj.mapGlobal('.bss', COUNTERS_SIZE, 'the request probe counters');
  }

  /** Load the program for this build's layout and attach it; throws a BpfError saying why not. */
  static attach(opts: RequestProbeOptions): RequestProbe {
    const ringBytes = opts.ringBytes ?? DEFAULT_RING_BYTES;
    const used = opts.usedHeaderNames;
    const filter = used !== undefined && used.request !== 'all';
    const obj = BpfObject.load(loadNative(), {
      path: opts.objectPath ?? DEFAULT_REQUEST_OBJECT,
      configure: (o) => {
        o.setMaxEntries('records', ringBytes);
        writeRequestConfig(o.rodata(CONFIG_SIZE), opts.layout, {
          headerFilter: filter,
          sampleRatio: opts.sampleRatio,
          pidns: opts.pidns,
        });
      },
    });
    try {
      // The map's names are shared with the USDT program's; only the request bit is read here.
      if (filter)
        for (const { key, value } of headerNameEntries(used))
          obj.updateMap('header_names', key, value, 'the BPF header-name filter');
      const failed = obj.attachUprobe(
        obj.program('on_dispose_request'),
        opts.pid,
        opts.binary,
        DISPOSE_FUNCTION,
      );
      if (failed !== undefined) {
        const why = failed.errno === EACCES || failed.errno === EPERM ? `${UPROBE_PERMISSION_HELP}; ` : '';
        throw new BpfError(
          `cannot attach a uprobe at ${DISPOSE_FUNCTION} of ${opts.binary} (errno ${failed.errno}): ${why}${failed.libbpf}`,
        );
      }
      return new RequestProbe(obj, obj.ring('records', ringBytes));
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  counters(): RequestProbeCounters {
    return readRequestCounters(this._counters);
  }

  /** Detach and free everything; the counters keep their last values. */
  close(): void {
    this._counters = Buffer.from(this._counters);
    this._obj.close();
  }
}
