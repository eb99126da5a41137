#!/usr/bin/env bash
# Installs the TensorFlow C library (libtensorflow) that mnistgan links against.
#
#   scripts/install-libtensorflow.sh          CPU: the tensorflow-cpu wheel
#   scripts/install-libtensorflow.sh --gpu    GPU: the tensorflow[and-cuda] wheel
#   LIBTENSORFLOW_DIR=/opt/libtensorflow scripts/install-libtensorflow.sh
#                                             use an existing install (include/, lib/)
#
# Why a wheel: the tensorflow-cpu==2.18.1 wheel on PyPI ships libtensorflow_cc.so.2
# and libtensorflow_framework.so.2, which export the whole TF_* C API, plus the C
# headers under tensorflow/include. Installing it into a project-local virtualenv
# gives cgo its library and gives the Python interop tests the same TensorFlow.
#
# Result, under third_party/libtensorflow/:
#   include/   the C API headers (only the ones c_api.h and eager/c_api.h pull in)
#   lib/       links to the two shared libraries, plus libtensorflow.so, the name
#              graft's `#cgo LDFLAGS: -ltensorflow` asks the linker for
#   cgo.env    `export CGO_CFLAGS=... CGO_LDFLAGS=...` with an rpath, sourced by the
#              Makefile (and by you, to run `go test` by hand)
#   INSTALLED  what was installed; a second run with the same request returns at once
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want_version=$(tr -d '[:space:]' <"$root/third_party/TF_VERSION")
dest="$root/third_party/libtensorflow"
venv="${MNISTGAN_VENV:-$root/third_party/venv}"
python="${PYTHON:-python3}"
variant=cpu

die() { echo "install-libtensorflow: $*" >&2; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --gpu) variant=gpu ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (try --help)" ;;
  esac
done
if [ -n "${LIBTENSORFLOW_DIR:-}" ]; then
  variant="external:$(cd "$LIBTENSORFLOW_DIR" 2>/dev/null && pwd)" ||
    die "LIBTENSORFLOW_DIR=$LIBTENSORFLOW_DIR is not a directory; point it at an unpacked libtensorflow ${want_version} (with include/ and lib/) or unset it to install from the wheel"
fi
marker="variant=$variant version=$want_version"
# A changed requirements file (a new Python test dependency) must reach an
# existing virtualenv, so its checksum is part of what was installed.
case "$variant" in
  cpu|gpu) marker="$marker requirements=$(sha256sum "$root/scripts/requirements-$variant.txt" | cut -c1-16)" ;;
esac

# Fast path: the same request was already installed and its files are still there.
if [ -f "$dest/INSTALLED" ] && [ "$(head -n 1 "$dest/INSTALLED")" = "$marker" ] &&
   [ -f "$dest/include/tensorflow/c/c_api.h" ] && [ -e "$dest/lib/libtensorflow.so" ] &&
   [ -f "$dest/cgo.env" ] && [ -e "$(readlink -f "$dest/lib/libtensorflow.so")" ]; then
  echo "libtensorflow $want_version ($variant) already installed in $dest"
  exit 0
fi

command -v gcc >/dev/null || die "gcc not found; cgo needs a C compiler (Debian: apt-get install gcc)"

# Each branch sets: headers (a directory holding tensorflow/c/c_api.h) and libdir
# (the real directory of the shared libraries) and main_lib (the one exporting TF_*).
if [ "$variant" = cpu ] || [ "$variant" = gpu ]; then
  if [ "$variant" = cpu ]; then req="$root/scripts/requirements-cpu.txt"; else req="$root/scripts/requirements-gpu.txt"; fi
  command -v "$python" >/dev/null || die "$python not found; install Python 3.9-3.12 or set PYTHON=/path/to/python3"
  if [ ! -x "$venv/bin/python" ]; then
    echo "creating virtualenv $venv"
    "$python" -m venv "$venv" || die "could not create a virtualenv at $venv with $python (Debian: apt-get install python3-venv)"
  fi
  echo "installing $(grep -m1 -E '^tensorflow' "$req") into $venv (about 600 MB, once)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" ||
    die "pip could not install $req into $venv; check that PyPI is reachable (pip config list) or set LIBTENSORFLOW_DIR to an existing libtensorflow $want_version"
  tfdir=$("$venv/bin/python" - <<'PY'
import importlib.util, os
spec = importlib.util.find_spec("tensorflow")
print(os.path.dirname(spec.origin) if spec and spec.origin else "")
PY
)
  [ -n "$tfdir" ] || die "the wheel installed, but Python cannot find the tensorflow package in $venv"
  headers="$tfdir/include"
  libdir="$tfdir"
  main_lib=libtensorflow_cc.so.2
else
  ext="${variant#external:}"
  headers="$ext/include"
  libdir="$ext/lib"
  main_lib=libtensorflow.so.2
  [ -f "$libdir/$main_lib" ] || main_lib=libtensorflow_cc.so.2
fi

[ -f "$headers/tensorflow/c/c_api.h" ] || die "no tensorflow/c/c_api.h under $headers; that is not a libtensorflow install"
[ -f "$libdir/$main_lib" ] || die "no libtensorflow.so.2 or libtensorflow_cc.so.2 in $libdir; that is not a libtensorflow install"
[ -f "$libdir/libtensorflow_framework.so.2" ] || die "no libtensorflow_framework.so.2 in $libdir; the install is incomplete"

# Build the result beside the target, then swap it in, so an interrupted run never
# leaves a half-filled third_party/libtensorflow behind.
stage="$dest.tmp.$$"
rm -rf "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/include" "$stage/lib"

if [ "${variant#external:}" != "$variant" ]; then
  ln -s "$headers" "$stage/include.ext" && rm -rf "$stage/include" && mv "$stage/include.ext" "$stage/include"
else
  # Copy exactly the headers the C API pulls in (they reach into tsl/ and xla/).
  probe="$stage/probe.c"
  printf '#include "tensorflow/c/c_api.h"\n#include "tensorflow/c/c_api_experimental.h"\n#include "tensorflow/c/eager/c_api.h"\n' >"$probe"
  (cd "$headers" && gcc -M -I. "$probe") | tr ' \\' '\n\n' | grep -v -e '^$' -e '^/' -e ':$' | sort -u |
    while read -r h; do
      mkdir -p "$stage/include/$(dirname "$h")"
      cp "$headers/$h" "$stage/include/$h"
    done
  rm -f "$probe"
fi
ln -s "$libdir/$main_lib" "$stage/lib/$main_lib"
ln -s "$libdir/libtensorflow_framework.so.2" "$stage/lib/libtensorflow_framework.so.2"
ln -s "$main_lib" "$stage/lib/libtensorflow.so"

# The rpath names the libraries' real directory: their own RUNPATH ($ORIGIN/...,
# used to find the framework library and, for GPU wheels, the CUDA wheels) is
# resolved from the path they are loaded by, and glibc does not follow links there.
cat >"$stage/cgo.env" <<EOF
# Written by scripts/install-libtensorflow.sh. Source it to build by hand:
#   . third_party/libtensorflow/cgo.env && go test ./...
export CGO_ENABLED=1
export CGO_CFLAGS="-I$dest/include"
export CGO_LDFLAGS="-L$dest/lib -Wl,-rpath,$libdir"
EOF

# Prove the library links, loads and is the pinned version before declaring success.
cat >"$stage/version.c" <<'EOF'
#include <stdio.h>
#include "tensorflow/c/c_api.h"
int main(void) { printf("%s\n", TF_Version()); return 0; }
EOF
gcc -o "$stage/version" "$stage/version.c" -I"$stage/include" -L"$stage/lib" -ltensorflow -Wl,-rpath,"$libdir" ||
  die "could not link a test program against $libdir/$main_lib"
got_version=$(TF_CPP_MIN_LOG_LEVEL=3 "$stage/version") || die "a test program linked against $libdir/$main_lib failed to run"
rm -f "$stage/version" "$stage/version.c"
case "$got_version" in
  "${want_version%.*}".*) ;;
  *) die "libtensorflow in $libdir is version $got_version, mnistgan needs ${want_version%.*}.x; unset LIBTENSORFLOW_DIR to install $want_version from the wheel" ;;
esac

printf '%s\nsource=%s\nlibrary=%s/%s\nreports=%s\n' "$marker" "$libdir" "$libdir" "$main_lib" "$got_version" >"$stage/INSTALLED"
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$stage" "$dest"
rm -rf "$dest.old"
trap - EXIT
echo "libtensorflow $got_version ($variant) installed in $dest"
