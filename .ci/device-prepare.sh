#!/usr/bin/env bash
# Prepares, on this machine, what .ci/device-check.sh needs on a lent GPU machine (which has CUDA, CMake, python3 with
# PyTorch, but no Node.js, no npm and no network): see ../shared/device.md.
#
#   bash .ci/device-prepare.sh
#
# Fills .device/ (ignored by git): node.xz (this node binary, xz-compressed), node-include (Node-API headers),
# golden (the conformance cases), and compiles the TypeScript into dist/. Then run on the device:
#
#   run(command: "bash .ci/device-check.sh",
#       carry: [".device", "dist", "node_modules/node-addon-api", "node_modules/node-gyp-build"],
#       timeout_s: 540)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mkdir -p .device
if ! git check-ignore -q .device 2>/dev/null; then
  echo "/.device/" >> .git/info/exclude
fi

node_bin="$(command -v node)"
if [ ! -f .device/node.xz ] || [ "$node_bin" -nt .device/node.xz ]; then
  echo "device-prepare: compressing $node_bin ($(node --version))"
  xz -T2 -6 -c "$node_bin" > .device/node.xz.tmp
  mv .device/node.xz.tmp .device/node.xz
fi
echo "$(node --version)" > .device/node-version

# Node-API headers only (node-addon-api needs nothing else): a few files instead of Node's whole include tree.
node_include="$(node -p "require('path').resolve(process.execPath, '../../include/node')")"
rm -rf .device/node-include
mkdir -p .device/node-include
for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h; do
  cp "$node_include/$h" .device/node-include/
done

rm -rf .device/golden
if [ -d ../shared/golden ]; then
  cp -r ../shared/golden .device/golden
  chmod -R u+w .device/golden
else
  cp -r test/fixtures/golden .device/golden
  chmod -R u+w .device/golden
fi

for dep in node-addon-api node-gyp-build; do
  [ -d "node_modules/$dep" ] || { echo "device-prepare: node_modules/$dep is missing: run npm install" >&2; exit 1; }
done

npx tsc -p tsconfig.json
[ -f dist/conformance/cli.js ] || { echo "device-prepare: tsc produced no dist/conformance/cli.js" >&2; exit 1; }

du -sh .device dist node_modules/node-addon-api node_modules/node-gyp-build
echo "device-prepare: ready. On the GPU machine: bash .ci/device-check.sh"
echo "  carry: .device dist node_modules/node-addon-api node_modules/node-gyp-build"
