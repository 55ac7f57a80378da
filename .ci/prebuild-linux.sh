#!/usr/bin/env bash
# Builds the Linux prebuilt binaries that the npm package ships in prebuilds/ (npm run prebuild:linux), with
# prebuildify (N-API, stripped, tagged with the libc), so that `npm install` needs no compiler on these platforms:
#
#   .ci/prebuild-linux.sh [x64] [arm64] [musl]     (no argument: x64, plus arm64 where its cross compiler is here)
#
#   x64    prebuilds/linux-x64/rnnkit.glibc.node    baseline x86-64-v2 (SSE4.2, POPCNT); AVX2 and AVX-512 code
#                                                   is chosen at run time inside the addon
#   arm64  prebuilds/linux-arm64/rnnkit.glibc.node  cross-compiled with aarch64-linux-gnu-g++
#                                                   (apt-get install g++-aarch64-linux-gnu)
#   musl   prebuilds/linux-x64/rnnkit.musl.node     needs a C++ compiler for musl (x86_64-linux-musl-g++ on the PATH,
#                                                   or MUSL_CXX/MUSL_CC): Debian has none (musl-tools is C only),
#                                                   so here it is reported and skipped; the GitHub workflow builds
#                                                   it on Alpine
#
# Every glibc binary is built with rnnkit_portable=1 (binding.gyp): libstdc++ linked in statically and kept private,
# only Node's entry points exported, and recent glibc symbols bound to their old versions
# (native/compat/glibc_compat.c), so that it loads on any glibc >= 2.18 with any libstdc++; the script checks this
# with objdump and fails if a newer symbol version or a libstdc++ dependency slipped in. No BLAS is linked (it is
# dlopen'ed at run time). The x64 binary is then loaded and run here; the arm64
# one under qemu-aarch64 when RNNKIT_ARM64_ROOT names a folder holding an arm64 Node (usr/bin/node or bin/node) and
# its libraries (see .ci/arm64-node-root.sh).
#
# The build runs in a scratch copy of the sources, so build/ (the binary of `npm install`) is left alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

MAX_GLIBC="${RNNKIT_MAX_GLIBC:-2.18}"

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(x64)
  if command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then targets+=(arm64); fi
fi

# node-gyp takes Node's headers from nodedir (no download); default: the installation of the running node.
if [ -z "${npm_config_nodedir:-}" ]; then
  nodedir="$(node -p "require('path').resolve(process.execPath, '../..')")"
  if [ -f "$nodedir/include/node/node_api.h" ]; then export npm_config_nodedir="$nodedir"; fi
fi
export JOBS="${JOBS:-$(nproc)}"

stage="$(mktemp -d)"
# On the way out, also drop the empty prebuilds/<platform> folder that a failed build leaves.
trap 'rm -rf "$stage"; rmdir prebuilds/* prebuilds 2>/dev/null || true' EXIT
cp package.json binding.gyp "$stage/"
cp -r native "$stage/"
ln -s "$root/node_modules" "$stage/node_modules"

# Fails unless the binary needs nothing newer than GLIBC_$MAX_GLIBC and no libstdc++ at all.
check_binary() {
  local file="$1" objdump="$2"
  echo "prebuild: $file: $(stat -c %s "$file") bytes"
  "$objdump" -p "$file" | sed -n 's/^ *NEEDED */prebuild:   needs /p'
  local versions
  versions="$("$objdump" -T "$file" | grep -oE '\((GLIBC|GLIBCXX|CXXABI|GCC)_[0-9.]+\)' | tr -d '()' | sort -V | uniq -c)"
  echo "prebuild:   symbol versions:"
  sed 's/^/prebuild:     /' <<<"$versions"
  if grep -qE 'GLIBCXX|CXXABI' <<<"$versions"; then
    echo "prebuild: $file needs libstdc++ symbols (it should carry its own libstdc++)" >&2
    return 1
  fi
  local newest
  newest="$(grep -oE 'GLIBC_[0-9.]+' <<<"$versions" | sed 's/GLIBC_//' | sort -V | tail -n 1)"
  echo "prebuild:   newest glibc symbol version: GLIBC_$newest (limit GLIBC_$MAX_GLIBC)"
  if [ "$(printf '%s\n%s\n' "$newest" "$MAX_GLIBC" | sort -V | tail -n 1)" != "$MAX_GLIBC" ]; then
    echo "prebuild: $file needs GLIBC_$newest, newer than GLIBC_$MAX_GLIBC:" >&2
    "$objdump" -T "$file" | grep -E "GLIBC_$newest" >&2
    return 1
  fi
}

# A tiny network: build, forward, one training step; prints the backend.
smoke_js='
const native = require(process.argv[1]);
const net = new native.Network({ cell: "lstm", inputSize: 3, hiddenSize: 4, headSize: 2, seed: 1 });
const x = { data: Float32Array.from({ length: 2 * 3 }, (_, i) => i / 6), shape: [2, 1, 3] };
net.setOptimizer({ type: "sgd", lr: 0.1 });
const out = net.forwardSync({ x }).output;
const r = net.trainStepSync({ x }, { classes: Int32Array.of(0, 1) });
if (out.data.length !== 4 || !(r.loss > 0)) throw new Error("unexpected result");
console.log("prebuild:   smoke test ok: output", Array.from(out.data, (v) => v.toFixed(4)).join(" "), "loss", r.loss.toFixed(4), JSON.stringify(native.backendInfo()));
'

prebuildify() {
  (cd "$stage" && rm -rf build && node "$root/node_modules/prebuildify/bin.js" --napi --strip --tag-libc --target "$(node -p process.versions.node)" --out "$root" "$@")
}

status=0
for target in "${targets[@]}"; do
  case "$target" in
    x64)
      echo "prebuild: linux-x64 (glibc, x86-64-v2)"
      npm_config_rnnkit_portable=1 npm_config_rnnkit_march=x86-64-v2 prebuildify --arch x64
      out="prebuilds/linux-x64/rnnkit.glibc.node"
      check_binary "$out" objdump
      if [ "$(uname -m)" = x86_64 ]; then node -e "$smoke_js" "$root/$out"; fi
      ;;
    arm64)
      if ! command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then
        echo "prebuild: linux-arm64: no aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu)" >&2
        status=1
        continue
      fi
      echo "prebuild: linux-arm64 (glibc, cross-compiled)"
      CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ npm_config_rnnkit_portable=1 \
        prebuildify --arch arm64 --strip-bin aarch64-linux-gnu-strip
      out="prebuilds/linux-arm64/rnnkit.glibc.node"
      file "$out" 2>/dev/null | grep -q 'ARM aarch64' || { echo "prebuild: $out is not an aarch64 binary" >&2; exit 1; }
      check_binary "$out" aarch64-linux-gnu-objdump
      arm64_root="${RNNKIT_ARM64_ROOT:-}"
      arm64_node=""
      for candidate in "$arm64_root/usr/bin/node" "$arm64_root/usr/bin/nodejs" "$arm64_root/bin/node"; do
        if [ -n "$arm64_root" ] && [ -f "$candidate" ]; then arm64_node="$candidate"; break; fi
      done
      if [ -n "$arm64_node" ] && command -v qemu-aarch64 >/dev/null 2>&1; then
        echo "prebuild:   running it under qemu-aarch64 with $arm64_node"
        qemu-aarch64 -L "$arm64_root" \
          -E "LD_LIBRARY_PATH=$arm64_root/usr/lib/aarch64-linux-gnu:$arm64_root/lib/aarch64-linux-gnu" \
          "$arm64_node" -e "$smoke_js" "$root/$out"
      else
        echo "prebuild:   not run: no qemu-aarch64 or no arm64 Node (RNNKIT_ARM64_ROOT)"
      fi
      ;;
    musl)
      musl_cxx="${MUSL_CXX:-$(command -v x86_64-linux-musl-g++ || true)}"
      musl_cc="${MUSL_CC:-$(command -v x86_64-linux-musl-gcc || true)}"
      if [ -z "$musl_cxx" ]; then
        echo "prebuild: linux-x64 musl: skipped: no C++ compiler for musl. Debian's musl-tools has only musl-gcc, a C" >&2
        echo "prebuild:   wrapper whose specs drop the C++ headers (-nostdinc), and Debian ships no libstdc++ built for" >&2
        echo "prebuild:   musl; build it on Alpine (the GitHub workflow does) or set MUSL_CXX/MUSL_CC." >&2
        status=1
        continue
      fi
      echo "prebuild: linux-x64 (musl) with $musl_cxx"
      CC="$musl_cc" CXX="$musl_cxx" LINK="$musl_cxx" npm_config_rnnkit_march=x86-64-v2 \
        prebuildify --arch x64 --libc musl
      ls -l prebuilds/linux-x64/rnnkit.musl.node
      ;;
    *)
      echo "prebuild: unknown target '$target' (x64, arm64, musl)" >&2
      exit 2
      ;;
  esac
done
ls -l prebuilds/*/
exit "$status"
