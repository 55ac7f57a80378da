#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer (g++) in a copy of the repository (the
# normal build/ is left alone) and runs the tap suite, or the test files given, against it. Node itself is not
# instrumented: the ASan runtime is preloaded (LD_PRELOAD) so that it comes first, as it must for an instrumented
# shared object; every child node process inherits it. Leak detection is off (V8 keeps memory to the end on purpose).
#
#   test/native/asan/run.sh [TEST_FILE...]     e.g. test/native/asan/run.sh test/hostile-calls.test.ts
#
# The default runs every test but test/pack-install.test.ts (it compiles a fresh copy of the package with npm, which
# says nothing about the addon's memory and takes minutes more). A finding aborts the process that hit it, so the
# test that ran it fails; the reports are in the output ("ERROR: AddressSanitizer", "runtime error:"). The last line
# is "asan: N sanitizer reports" and the exit status is nonzero when tap failed or a report was printed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
work="${ASAN_WORK:-$root/build/asan}"
tree="$work/tree"

rm -rf "$tree"
mkdir -p "$tree"
# The working tree as git sees it (tracked and untracked files that are not ignored), without build outputs.
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$tree")
ln -s "$root/node_modules" "$tree/node_modules"
cd "$tree"

nodedir="$(node -p "require('path').resolve(process.execPath, '../..')")"
flags="-fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer -g -O1"
echo "asan: building the addon with $flags ($(g++ --version | head -n 1))"
CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
  npx node-gyp rebuild --nodedir="$nodedir" -j "$(nproc)" >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; exit 1; }
npx tsc -p tsconfig.json

libasan="$(g++ -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "asan: libasan.so not found (apt-get install libasan8 or the gcc that matches)" >&2; exit 1; }
if [ $# -gt 0 ]; then files=("$@"); else
  mapfile -t files < <(ls test/*.test.ts | grep -v 'test/pack-install.test.ts')
fi

log="$work/tap.log"
rc=0
env LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:allow_user_segv_handler=1:handle_segv=1" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1" \
  npx tap --reporter=tap --timeout=900 "${files[@]}" 2>&1 | tee "$log" || rc=$?
reports="$(grep -cE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$log" || true)"
grep -E '^# \{ total' "$log" | tail -n 1 || true
echo "asan: $reports sanitizer reports"
[ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]
