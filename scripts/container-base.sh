#!/bin/sh
# The Containerfile's base image, made locally when no registry is reachable (as on CI machines here): a minimal
# Debian bookworm (debootstrap) with this machine's Node.js and npm in /usr/local, tagged with the official image's
# name so that `podman build --pull=never` takes it. It also trusts this machine's CA bundle (where a proxy
# re-signs TLS, npm in the build stage needs it). Made once; `--force` makes it again.
#   usage: scripts/container-base.sh [--force]      (root; needs debootstrap and podman)
set -eu
image=${H2O_OTEL_BASE_IMAGE:-docker.io/library/node:20-bookworm-slim}
if [ "${1:-}" != --force ] && podman image exists "$image"; then exit 0; fi
node=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
major=$("$node" -p 'process.versions.node.split(".")[0]')
case "$image" in *":$major-"*) ;; *) echo "container-base: this machine's Node.js is $major, the image is $image" >&2 ;; esac
# The machine's Debian mirror when it has one (an Ubuntu mirror has no bookworm).
mirror=$(awk '$1 == "URIs:" && $2 ~ /debian/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/h2o-otel-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "container-base: debootstrap bookworm from $mirror, then $image (about 40 s)" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules" "$root/etc/ssl/certs"
cp "$node" "$root/usr/local/bin/node"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] && cp "$ca" "$root/etc/ssl/certs/h2o-otel-build-ca.crt"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
tar -C "$root" -c . | podman import \
  --change 'CMD ["node"]' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/h2o-otel-build-ca.crt' \
  --change 'ENV npm_config_cafile=/etc/ssl/certs/h2o-otel-build-ca.crt' \
  - "$image" >/dev/null
echo "container-base: $image made" >&2
