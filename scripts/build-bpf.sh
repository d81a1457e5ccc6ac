#!/bin/sh
# Rebuild native/h2o_usdt.bpf.o and native/h2o_request.bpf.o from their .bpf.c (`npm run build:bpf`).
# Usage: build-bpf.sh [USDT_OUT [REQUEST_OUT]]; REQUEST_OUT defaults to h2o_request.bpf.o beside USDT_OUT. Running h2o-otel needs only the
# committed object; rebuilding needs clang, the libbpf headers and the kernel UAPI headers:
#   apt-get install -y clang libbpf-dev linux-libc-dev
# No kernel headers or vmlinux.h: the programs touch no kernel structure, only probe arguments and user memory.
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
build() {
  clang -target bpf -D__TARGET_ARCH_x86 -I"/usr/include/$multiarch" -I. -O2 -g -Wall -Werror -c "$1" -o "$2"
  # Strip DWARF (keeps BTF, which libbpf needs): a smaller committed object with the same code.
  llvm-strip -g "$2" 2>/dev/null || true
  echo "build:bpf: wrote native/$2 ($(wc -c <"$2") bytes) with $(clang --version | head -1)"
}
usdt_out=${1:-h2o_usdt.bpf.o}
request_out=${2:-$(dirname "$usdt_out")/h2o_request.bpf.o}
request_out=${request_out#./}
build h2o_usdt.bpf.c "$usdt_out"
build h2o_request.bpf.c "$request_out"
