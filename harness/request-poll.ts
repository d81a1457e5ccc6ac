// Reads a request probe's ring in a test, as the request source does per process: header records joined to their
// request by a RequestAssembler.
import type { RequestProbe } from '../src/sources/request/request-probe.js';
import { type DisposedRequest, RequestAssembler } from '../src/sources/request/request-record.js';

/** A reader of `probe`'s ring; each call hands every request sent so far to `onRecord` and says how many. */
export function requestReader(probe: RequestProbe): (onRecord: (record: DisposedRequest) => void) => number {
  const assembler = new RequestAssembler();
  return (onRecord) => {
    let requests = 0;
    probe.ring.drain((data, offset, length) => {
      const record = assembler.push(data, offset, length);
      if (record === undefined) return;
      requests++;
      onRecord(record);
    }, 1 << 16);
    return requests;
  };
}
