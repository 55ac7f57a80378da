#!/usr/bin/env bash
# Builds the addon with CMake (CMakeLists.txt) without downloading anything.
#
#   .ci/build-cmake.sh [OUT_DIR] [cmake-js options...]     (npm run build:cmake / npm run build:cuda)
#   e.g. .ci/build-cmake.sh build-cuda --CDRNNKIT_CUDA=ON
#
# The addon lands in OUT_DIR/Release/rnnkit.node (OUT_DIR defaults to build-cmake); RNNKIT_BINARY=cuda (or cmake, or
# its path) makes require('rnnkit') load it.
#
# cmake-js downloads Node's headers from nodejs.org unless npm's `nodedir` names a Node install that has them, so
# this script points nodedir at the headers installed beside the running node (include/node), and uses them.
# Without cmake-js (e.g. `npm install --omit=dev`) it runs plain CMake with -DNODE_INCLUDE_DIR instead;
# options of the form --CDNAME=VALUE are passed to CMake as -DNAME=VALUE either way.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

out="build-cmake"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  out="$1"
  shift
fi

jobs="$(nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)"

# require('rnnkit') keeps loading the binary of `npm install` until RNNKIT_BINARY names this one (lib/native.ts).
how_to_load() {
  local name
  case "$out" in
    build-cuda) name=cuda ;;
    build-cmake) name=cmake ;;
    *) name="$(cd "$out/Release" && pwd)/rnnkit.node" ;;
  esac
  echo "build-cmake: built $out/Release/rnnkit.node; RNNKIT_BINARY=$name makes require('rnnkit') load it (docs/cuda.md)"
}

has_headers() { [ -n "$1" ] && [ -f "$1/include/node/node_api.h" ]; }

nodedir="${npm_config_nodedir:-}"
if ! has_headers "$nodedir"; then
  nodedir="$(node -p "require('path').resolve(process.execPath, '../..')")"
  if ! has_headers "$nodedir"; then
    nodedir=""
  fi
fi

cmake_js="$root/node_modules/.bin/cmake-js"
if [ -x "$cmake_js" ]; then
  if [ -n "$nodedir" ]; then
    echo "build-cmake: cmake-js with Node's headers from $nodedir/include/node"
    export npm_config_nodedir="$nodedir"
  else
    echo "build-cmake: no local Node headers beside $(command -v node): cmake-js will download them"
  fi
  "$cmake_js" rebuild --out "$out" --parallel "$jobs" "$@"
  how_to_load
  exit 0
fi

# Plain CMake.
if [ -z "$nodedir" ]; then
  echo "build-cmake: neither cmake-js nor Node's headers (include/node beside node) were found" >&2
  exit 1
fi
defs=()
for arg in "$@"; do
  case "$arg" in
    --CD*) defs+=("-D${arg#--CD}") ;;
    *) echo "build-cmake: option '$arg' needs cmake-js (npm install)" >&2; exit 2 ;;
  esac
done
echo "build-cmake: plain CMake with Node's headers from $nodedir/include/node"
rm -rf "$out"
cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Release -DNODE_INCLUDE_DIR="$nodedir/include/node" ${defs[@]+"${defs[@]}"}
cmake --build "$out" --parallel "$jobs"
how_to_load
