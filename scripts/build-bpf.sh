#!/bin/sh
# Rebuild native/h2o_usdt.bpf.o from native/h2o_usdt.bpf.c (`npm run build:bpf`). Running h2o-otel needs only the
# committed object; rebuilding needs clang, the libbpf headers and the kernel UAPI headers:
#   apt-get install -y clang libbpf-dev linux-libc-dev
# No kernel headers or vmlinux.h: the program touches no kernel structure, only USDT arguments and user memory.
set -eu
cd "$(dirname "$0")/../native"
missing=""
command -v clang >/dev/null 2>&1 || missing="$missing clang"
[ -f /usr/include/bpf/usdt.bpf.h ] || missing="$missing libbpf-dev"
[ -f /usr/include/linux/bpf.h ] || missing="$missing linux-libc-dev"
if [ -n "$missing" ]; then
  echo "build:bpf: missing packages:$missing (apt-get install -y$missing)" >&2
  exit 1
fi
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
out=${1:-h2o_usdt.bpf.o}
clang -target bpf -D__TARGET_ARCH_x86 -I"/usr/include/$multiarch" -I. -O2 -g -Wall -Werror \
  -c h2o_usdt.bpf.c -o "$out"
# Strip DWARF (keeps BTF, which libbpf needs): a smaller committed object with the same code.
llvm-strip -g "$out" 2>/dev/null || true
echo "build:bpf: wrote native/$out ($(wc -c <"$out") bytes) with $(clang --version | head -1)"
