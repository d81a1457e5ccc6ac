#!/bin/sh
# The Debian/Ubuntu packages h2o-otel's tests need, installed when missing (`npm test` runs this first):
#   libbpf1           the USDT source loads libbpf.so.1 at run time (libbpf >= 1.0: Debian 12, Ubuntu 23.04+)
#   clang libbpf-dev linux-libc-dev   `npm run build:bpf` rebuilds the BPF program (a test does)
#   gcc systemtap-sdt-dev             the USDT test fixture: a C program with H2O's probes (sys/sdt.h, dtrace)
#   dwarves                           pahole: the request probe's struct layouts from H2O's debug info (BTF)
#   openssl                           the test H2O's self-signed certificate (harness/h2o-server.ts)
#   podman runc netavark aardvark-dns catatonit iptables debootstrap debian-archive-keyring
#                                     the container tests: the image from the Containerfile on a base image made
#                                     locally (scripts/container-base.sh), the Kubernetes manifests played by podman
set -eu
need=""
for pkg in libbpf1 libbpf-dev clang linux-libc-dev gcc systemtap-sdt-dev dwarves openssl \
  podman runc netavark aardvark-dns catatonit iptables debootstrap debian-archive-keyring; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need="$need $pkg"
done
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "h2o-otel tests need these packages:$need. Install them: sudo apt-get install -y$need" >&2
  exit 1
fi
echo "system-deps: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >&2
