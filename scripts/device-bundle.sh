#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has PyTorch but neither Node nor
# network into .device/ (git-ignored), next to a built checkout (npm run setup first):
#
#   .device/node-<version>-linux-x64.tar.xz   this Node (a self-contained official build) and
#                                              the Node-API headers node-gyp builds against
#   .device/node_modules.tar.xz                the npm packages the product needs at run time
#                                              (npm ci --omit=dev) and node-gyp
#   .device/jpeg/                              libjpeg-turbo's headers and library (the addon
#                                              decodes JPEGs with it; PyTorch images lack them)
#   .device/cifar10.mmpack                     CIFAR-10 (train + val) as one pack (mmoco pack)
#
#   scripts/device-bundle.sh [--data <cifar10 ImageFolder root>]   (default ../shared/datasets/cifar10)
#
# Then carry `.device` and `dist` with the checkout and run scripts/gpu-check.sh there. Prints
# the sizes: the whole transfer must stay under the machine's limit (64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/datasets/cifar10
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    *) echo "device-bundle: unknown option $1 (allowed: --data DIR)" >&2; exit 2 ;;
  esac
done
mkdir -p .device
log() { echo "[device-bundle] $*" >&2; }

# Node: the binary and the headers an N-API addon is compiled against
ver=$(node --version)
node_bin=$(readlink -f "$(command -v node)")
prefix=$(dirname "$(dirname "$node_bin")")
if ldd "$node_bin" | grep -q 'libnode\|libuv\|libssl'; then
  echo "device-bundle: $node_bin links shared Node libraries; use an official Node build" >&2
  exit 1
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
nd="$stage/node-$ver-linux-x64"
mkdir -p "$nd/bin" "$nd/include/node"
cp "$node_bin" "$nd/bin/node"
for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h node_version.h common.gypi config.gypi; do
  cp "$prefix/include/node/$h" "$nd/include/node/"
done
if [ ! -f ".device/node-$ver-linux-x64.tar.xz" ]; then
  log "packing Node $ver"
  rm -f .device/node-*.tar.xz
  tar -C "$stage" -cJf ".device/node-$ver-linux-x64.tar.xz" "node-$ver-linux-x64"
fi

# npm packages: production dependencies only (node-gyp is one), from the lock file
if [ ! -f .device/node_modules.tar.xz ] || [ package-lock.json -nt .device/node_modules.tar.xz ]; then
  log "packing the production npm packages"
  mkdir -p "$stage/pkg"
  cp package.json package-lock.json "$stage/pkg/"
  (cd "$stage/pkg" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >&2)
  tar -C "$stage/pkg" -cJf .device/node_modules.tar.xz node_modules
fi

# libjpeg-turbo (Debian's libjpeg62-turbo): headers and the shared library
ma=$(gcc -print-multiarch)
mkdir -p .device/jpeg/include .device/jpeg/lib
for h in jpeglib.h jerror.h jmorecfg.h; do cp "/usr/include/$h" .device/jpeg/include/; done
cp "/usr/include/$ma/jconfig.h" .device/jpeg/include/
cp -L "/usr/lib/$ma/libjpeg.so.62" .device/jpeg/lib/
ln -sf libjpeg.so.62 .device/jpeg/lib/libjpeg.so

# CIFAR-10 as one pack
if [ ! -f .device/cifar10.mmpack ]; then
  [ -d "$data" ] || { echo "device-bundle: no CIFAR-10 folder at $data (--data)" >&2; exit 1; }
  log "packing $data"
  node dist/src/cli/main.js pack "$data" .device/cifar10.mmpack >&2
fi

du -sh .device/* dist >&2
total=$(( $(du -sb .device | cut -f1) + $(du -sb dist | cut -f1) + $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) ))
echo "{\"bundleBytes\": $(du -sb .device | cut -f1), \"distBytes\": $(du -sb dist | cut -f1), \"transferBytes\": $total, \"limitBytes\": $((64 * 1024 * 1024))}"
[ "$total" -lt $((64 * 1024 * 1024)) ] || { echo "device-bundle: $total bytes exceed the 64 MiB transfer" >&2; exit 1; }
