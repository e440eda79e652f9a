#!/usr/bin/env bash
# Installs what mmoco needs on a Debian/Ubuntu machine, idempotently: system packages
# (libtorch, a fast BLAS, the build tools), npm packages, the native addon and the
# TypeScript build. Each step is skipped when already done, so every README command can
# call it. Options: --reference also installs Debian's python3-torch (the reference
# implementation that benchmarks compare against and that regenerates test fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."

want_reference=0
for arg in "$@"; do
  case "$arg" in
    --reference) want_reference=1 ;;
    *) echo "setup.sh: unknown option $arg (allowed: --reference)" >&2; exit 2 ;;
  esac
done

log() { echo "[setup] $*" >&2; }

# BLAS: libtorch calls sgemm_ through libblas.so.3. Without an optimised provider Debian
# resolves it to the reference BLAS, ~40x slower. See bench/THREADS.md for the variant.
BLAS_PKG=libopenblas0-pthread
packages=(libtorch-dev "$BLAS_PKG" g++ make python3 dataset-fashion-mnist)
[ "$want_reference" = 1 ] && packages+=(python3-torch)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${LIBTORCH:-}" ] && [ "${missing[*]}" = "libtorch-dev" ]; then
    log "LIBTORCH is set; not installing libtorch-dev"
  else
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

# npm packages: `npm ci` when node_modules is missing or older than the lock file. Its
# install hook builds the native addon.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
fi

# Native addon (no-op when its inputs are unchanged) and the TypeScript build.
node scripts/build-native.mjs
npx tsc -p tsconfig.json

# Warn when matmul would run on the reference BLAS.
node --input-type=module -e "
  const t = await import('./dist/src/torch/index.js');
  const b = t.blasInfo();
  if (t.isReferenceBlas(b)) console.error('[setup] WARNING: libtorch uses the reference BLAS (' + b.library + '): matmul is ~40x slower. Install $BLAS_PKG.');
"
