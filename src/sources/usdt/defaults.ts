/** What the CLI needs to know about the USDT source without loading it (and koffi's native addon with it). */
import { fileURLToPath } from 'node:url';

export const DEFAULT_BPF_OBJECT = fileURLToPath(
  new URL('../../../../native/h2o_usdt.bpf.o', import.meta.url),
);

export type UsdtTarget =
  { readonly kind: 'pid'; readonly pid: number } | { readonly kind: 'binary'; readonly path: string };
