#!/usr/bin/env bash
# Installs what mmoco needs on a Debian/Ubuntu machine, idempotently: system packages
# (libtorch, a fast BLAS, the build tools), npm packages, the native addon and the
# TypeScript build. Each step is skipped when already done, so every README command can
# call it. Options: --reference also installs the reference implementation that benchmarks
# compare against, that regenerates test fixtures and that `npm test` uses to read back what
# `mmoco export` writes: Debian's PyTorch with what the scripts in bench/ and test/fixtures/
# import (torchvision, PIL, NumPy), and checks that each of their imports resolves (imports
# guarded by `except ImportError`, such as timm, are optional).
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
# resolves it to the reference BLAS, ~40x slower. The OpenMP build of OpenBLAS runs its
# GEMMs on libtorch's own OpenMP pool instead of a competing pthread pool: a ViT block
# training step gains 1.66x from the second core against 0.86x (bench/THREADS.md).
BLAS_PKG=libopenblas0-openmp
packages=(libtorch-dev libgloo-dev libjpeg-dev "$BLAS_PKG" g++ make python3 dataset-fashion-mnist chromium)
# the Debian package of each module the reference scripts import (checked below)
REFERENCE_PACKAGES=(python3-torch python3-torchvision python3-pil python3-numpy)
[ "$want_reference" = 1 ] && packages+=("${REFERENCE_PACKAGES[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${LIBTORCH:-}" ] && [ "${missing[*]}" = "libtorch-dev" ]; then
    log "LIBTORCH is set; not installing libtorch-dev"
  else
    log "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

# Select the OpenMP build for all three names libtorch loads: libopenblas.so.0 is the engine,
# libblas.so.3 / liblapack.so.3 thin wrappers. Auto mode would prefer the pthread build
# (priority 100 vs 95) whenever that is installed too, so set them explicitly.
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
for lib in libopenblas.so.0 libblas.so.3 liblapack.so.3; do
  target="/usr/lib/$ma/openblas-openmp/$lib"
  current=$(update-alternatives --query "$lib-$ma" 2>/dev/null | sed -n 's/^Value: //p')
  if [ -e "$target" ] && [ "$current" != "$target" ]; then
    log "selecting $target"
    ${sudo:-} update-alternatives --set "$lib-$ma" "$target" >&2
  fi
done

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

# Every module a reference script imports must load with Debian's Python (a script added with a
# new import fails here, naming it, instead of in the middle of a benchmark).
if [ "$want_reference" = 1 ]; then
  /usr/bin/python3 - bench test/fixtures <<'PY'
import ast, importlib, os, sys
missing = {}
# the scripts' own modules (bench scripts import test/fixtures/reference_step.py and reference_models.py)
local = {f[:-3] for folder in sys.argv[1:] for f in os.listdir(folder) if f.endswith(".py")}
for folder in sys.argv[1:]:
    for f in sorted(os.listdir(folder)):
        if not f.endswith(".py"):
            continue
        path = os.path.join(folder, f)
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        # imports guarded by `try: ... except ImportError` are optional (timm: where installed)
        optional = set()
        for t in ast.walk(tree):
            if isinstance(t, ast.Try) and any(
                    h.type is not None and any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                                               for n in ast.walk(h.type)) for h in t.handlers):
                optional.update(id(n) for s in t.body for n in ast.walk(s))
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                if name.split(".")[0] in local:
                    continue
                try:
                    importlib.import_module(name)
                except Exception as e:
                    missing.setdefault(f"{name} ({type(e).__name__}: {e})", []).append(path)
if missing:
    for name, files in missing.items():
        print(f"[setup] the reference Python cannot import {name}, used by {', '.join(files)}", file=sys.stderr)
    sys.exit(1)
PY
fi
