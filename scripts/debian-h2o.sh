#!/bin/sh
# Builds a real H2O for the tests from Debian's own `h2o` source package (2.2.5 on Debian 12), without DTrace probes
# and with its debug info kept, so the request probe can be tried on the H2O users run. Prints the binary's path.
# The build is cached outside the clone: ${H2O_OTEL_CACHE:-/var/cache/h2o-otel}/h2o-<version>/; a second run prints
# the cached path at once. Needs root (apt) on the first run; the system's own apt sources are left as they are.
set -eu
cache="${H2O_OTEL_CACHE:-/var/cache/h2o-otel}"

# A build counts once it has finished (.built), so an interrupted link is never handed out.
cached() {
  for done in "$cache"/h2o-*/.built; do
    [ -f "$done" ] && [ -x "${done%.built}build/h2o" ] && { echo "${done%.built}build/h2o"; return 0; }
  done
  return 1
}
cached && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "debian-h2o: building H2O from Debian's source package needs root and apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

list=/etc/apt/sources.list.d/h2o-otel-src.list

# The mirror, suite, key (- when none) and components of the machine's main Debian source (deb822 .sources, else sources.list); the release's
# codename and deb.debian.org when neither says.
main_source() {
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uri != "" && suite != "" && suite !~ /-(security|updates|backports)$/) {
          print uri, suite, (key == "" ? "-" : key), comps; found = 1; exit
        }
        types = uri = suite = key = comps = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      $1 == "Types:" { types = $0; sub(/^Types:[ \t]*/, "", types) }
      $1 == "URIs:" { uri = $2 }
      $1 == "Suites:" { suite = $2 }
      $1 == "Signed-By:" { key = $2 }
      $1 == "Components:" { comps = $0; sub(/^Components:[ \t]*/, "", comps) }
      END { if (!found) flush() }
    ' "$f" | head -n 1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    [ "$f" = "$list" ] && continue
    awk '$1 == "deb" {
      key = "-"
      if (match($0, /\[[^]]*\]/)) {
        opts = substr($0, RSTART + 1, RLENGTH - 2)
        if (match(opts, /signed-by=[^ ]*/)) key = substr(opts, RSTART + 10, RLENGTH - 10)
        $0 = substr($0, 1, index($0, "[") - 1) substr($0, index($0, "]") + 1)
      }
      if ($3 !~ /-(security|updates|backports)$/) {
        comps = $4; for (i = 5; i <= NF; i++) comps = comps " " $i
        print $2, $3, key, comps; exit
      }
    }' "$f"
  done
  # shellcheck disable=SC1091
  . /etc/os-release
  echo "http://deb.debian.org/debian ${VERSION_CODENAME:-bookworm} /usr/share/keyrings/debian-archive-keyring.gpg main"
}

# shellcheck disable=SC2046
set -- $(main_source | head -n 1)
uri=$1 suite=$2 key=$3
shift 3
[ "$key" = - ] && key=""
# The same components as the binaries: h2o is in main on Debian, in universe on Ubuntu.
entry="deb-src${key:+ [signed-by=$key]} $uri $suite $*"
if [ "$(cat "$list" 2>/dev/null)" != "$entry" ]; then
  echo "$entry" >"$list"
fi
echo "debian-h2o: $entry" >&2
# Refresh only the private list; the other lists stay as the system left them.
apt-get update -qq -o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2

# What H2O's cmake needs with mruby and the bundled OpenSSL off (dpkg-dev unpacks the source package).
need=""
for pkg in dpkg-dev cmake make gcc g++ pkg-config libssl-dev zlib1g-dev libyaml-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need="$need $pkg"
done
if [ -n "$need" ]; then
  echo "debian-h2o: installing$need" >&2
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >&2
fi

version=$(apt-cache showsrc h2o | awk '$1 == "Version:" { print $2; exit }')
[ -n "$version" ] || { echo "debian-h2o: apt knows no h2o source package for $suite" >&2; exit 1; }
dir="$cache/h2o-$(echo "$version" | tr ':~' '__')"
mkdir -p "$dir"
if [ ! -f "$dir/src/CMakeLists.txt" ]; then
  rm -rf "$dir/get" "$dir/src"
  mkdir -p "$dir/get"
  # The download runs as root: the _apt sandbox cannot write to the cache, and says so on stderr.
  (cd "$dir/get" && apt-get source -qq "h2o=$version" >&2)
  mv "$dir/get/$(cd "$dir/get" && ls -d h2o-*/ | head -n 1)" "$dir/src"
  rm -rf "$dir/get"
fi

# RelWithDebInfo keeps the DWARF that `pahole` turns into the layouts the request probe reads.
mkdir -p "$dir/build"
(
  cd "$dir/build"
  cmake -DWITH_MRUBY=OFF -DWITH_BUNDLED_SSL=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo ../src >&2
  make -j2 h2o >&2
)
touch "$dir/.built"
echo "$dir/build/h2o"
