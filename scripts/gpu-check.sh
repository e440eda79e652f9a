#!/usr/bin/env bash
# The GPU check: on a bare CUDA machine with Python's PyTorch (no network), one call builds the
# addon against that PyTorch, runs the CUDA tests, the GPU benchmarks against PyTorch on the same
# card and the first CIFAR-10 runs, and writes every figure into one results folder:
#
#   env.json            the machine, the GPU, PyTorch, the addon's build
#   tests.tap           the CUDA tests (TAP); tests.json: passed / failed / skipped
#   bench-step.jsonl    the step benchmark (bench format; cases named "cuda ..."), peak row first
#   bench-data.jsonl    the loader on generated 256 px JPEGs, center-cropped to 224
#   first-runs.jsonl    the two CIFAR-10 runs (n = 1, n = 8): kNN after training and at init
#   n1/, n8/            their metrics.jsonl, report.html and report/*.png
#   timings.json        seconds per part; summary.txt: the table printed last
#
#   scripts/gpu-check.sh --out DIR [--device cuda|cpu] [--toy] [--data FILE.mmpack|FOLDER]
#                        [--minutes M] [--deadline T] [--skip build,tests,step,data,runs]
#                        [--archive FILE.tar.gz]
#
# --minutes M is the two CIFAR-10 runs' training time together (default 3); --deadline T caps it
# so that the whole check ends within about T minutes of its start, whatever the build and the
# benchmarks took (the runs' probes, kNN at initialisation and reports are reserved apart).
# --archive also packs the results folder into one .tar.gz (without the runs' checkpoints and
# the toy data), for machines that hand back a few files rather than a folder tree.
#
# --device cpu --toy runs every part at toy sizes on the CPU in a minute or two (the test suite
# does, so the script cannot rot). A part that fails is recorded (timings.json, summary) and the
# others still run; the exit status is 1 if any part failed. Node: `node` on PATH (>= 20), else
# the one unpacked from .device/node-*.tar.xz; npm packages: node_modules, else
# .device/node_modules.tar.xz (scripts/device-bundle.sh makes both, with the CIFAR-10 pack).
set -uo pipefail
cd "$(dirname "$0")/.."

out="" device=cuda toy=0 data="" minutes=3 deadline="" skip="" archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --toy) toy=1; shift ;;
    --data) data="$2"; shift 2 ;;
    --minutes) minutes="$2"; shift 2 ;;
    --skip) skip="$2"; shift 2 ;;
    --deadline) deadline="$2"; shift 2 ;;
    --archive) archive="$2"; shift 2 ;;
    *) echo "gpu-check: unknown option $1 (allowed: --out DIR --device cuda|cpu --toy --data PATH --minutes M --deadline T --skip PARTS --archive FILE)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "gpu-check: --out DIR is required" >&2; exit 2; }
case "$device" in cuda|cpu) ;; *) echo "gpu-check: --device must be cuda or cpu, got '$device'" >&2; exit 2 ;; esac
for v in "$minutes" ${deadline:+"$deadline"}; do
  [[ "$v" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "gpu-check: --minutes and --deadline take a number of minutes, got '$v'" >&2; exit 2; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -n "$archive" ]; then
  mkdir -p "$(dirname "$archive")"
  archive="$(cd "$(dirname "$archive")" && pwd)/$(basename "$archive")"
  case "$archive" in "$out"/*) echo "gpu-check: --archive must lie outside --out ($archive)" >&2; exit 2 ;; esac
fi
log() { echo "[gpu-check $(date +%H:%M:%S)] $*" >&2; }

# ---- Node and the npm packages ----
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  tarball=$(ls .device/node-*.tar.xz 2>/dev/null | head -1)
  [ -n "$tarball" ] || { echo "gpu-check: no Node >= 20 on PATH and no .device/node-*.tar.xz (scripts/device-bundle.sh)" >&2; exit 2; }
  # unpacked beside the tarball (git-ignored), where node-gyp finds the headers next to the binary
  mkdir -p .device/node
  python3 -c "import lzma,sys,tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall(sys.argv[2])" "$tarball" .device/node
  export PATH="$PWD/$(dirname "$(ls .device/node/*/bin/node | head -1)"):$PATH"
fi
if [ ! -d node_modules ] && [ -f .device/node_modules.tar.xz ]; then
  python3 -c "import lzma,sys,tarfile; tarfile.open(fileobj=lzma.open(sys.argv[1])).extractall('.')" .device/node_modules.tar.xz
fi
# libjpeg-turbo: the system's, else the bundle's (headers for the build, the library at run time)
if [ ! -f /usr/include/jpeglib.h ] && [ -f .device/jpeg/include/jpeglib.h ]; then
  export CPATH="$PWD/.device/jpeg/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$PWD/.device/jpeg/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  export LD_LIBRARY_PATH="$PWD/.device/jpeg/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[ -d node_modules ] || { echo "gpu-check: node_modules missing (npm ci, or .device/node_modules.tar.xz)" >&2; exit 2; }
[ -f dist/src/cli/main.js ] || { echo "gpu-check: dist/ missing (npx tsc -p tsconfig.json, or carry dist)" >&2; exit 2; }
# the Python whose PyTorch the addon is built against and the benchmarks compare with
py=""
for c in "${MMOCO_PYTHON:-}" python3 /usr/bin/python3; do
  if [ -n "$c" ] && "$c" -c 'import torch' 2>/dev/null; then py=$c; break; fi
done
[ -n "$py" ] || { echo "gpu-check: no Python with PyTorch (set MMOCO_PYTHON)" >&2; exit 2; }
export MMOCO_PYTHON="$py"
cores=$(nproc)
# libuv's pool decodes and resizes images (4 threads by default): one per core here
export UV_THREADPOOL_SIZE="${UV_THREADPOOL_SIZE:-$(( cores > 4 ? cores : 4 ))}"
# run from inside a test (the suite's toy check), node --test would report to that test's
# runner instead of writing TAP
unset NODE_TEST_CONTEXT

declare -A took status
failed=0
part() {  # part NAME COMMAND...: runs, times and records one part
  local name=$1; shift
  if [[ ",$skip," == *",$name,"* ]]; then status[$name]=skipped; took[$name]=0; return; fi
  log "$name: $*"
  local t0=$SECONDS
  if "$@"; then status[$name]=ok; else status[$name]="failed ($?)"; failed=1; fi
  took[$name]=$((SECONDS - t0))
  log "$name: ${status[$name]} in ${took[$name]} s"
}

# ---- the machine ----
environment() {
  local smi
  smi=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || true)
  {
    echo "{"
    echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"device\": \"$device\", \"toy\": $toy, \"cores\": $cores,"
    echo "\"node\": \"$(node --version)\","
    echo "\"torch\": $("$py" -c 'import json,torch; print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "capability": list(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None}))' 2>/dev/null || echo null),"
    echo "\"nvidiaSmi\": $(node -p 'JSON.stringify(process.argv[1] || null)' "$smi")"
    echo "}"
  } > "$out/env.json"
}
environment

# ---- build the addon against this machine's PyTorch ----
build() {
  if [ "$device" = cuda ]; then
    LIBTORCH=$("$py" -c 'import os,torch; print(os.path.dirname(torch.__file__))') || return 1
    export LIBTORCH
  fi
  node scripts/build-native.mjs || return 1
  node dist/src/cli/main.js info > "$out/build.json" || return 1
  if [ "$device" = cuda ]; then
    node -e "const i=require('$out/build.json'); if(!i.withCuda||!i.cuda){console.error('the addon sees no CUDA device: '+JSON.stringify(i));process.exit(1)}" || return 1
  fi
}
part build build

# ---- the CUDA tests (and the data and method tests that run on the device) ----
tests() {
  local files=(dist/test/torch/cuda.test.js dist/test/torch/host-sync.test.js dist/test/data/transforms-cuda.test.js dist/test/ssl/graphed-step.test.js
    dist/test/data/device-cache.test.js dist/test/train/device-cache.test.js)
  node --test --test-concurrency=1 --test-reporter=tap "${files[@]}" > "$out/tests.tap" 2>&1
  local rc=$?
  # the export read back by timm itself (timm is on GPU images, not in Debian)
  node --test --test-reporter=tap --test-name-pattern 'timm itself' dist/test/cli/weights.test.js >> "$out/tests.tap" 2>&1 || rc=1
  local npass nfail nskip
  npass=$(grep '^ok ' "$out/tests.tap" | grep -vc 'does not match pattern'); nfail=$(grep -c '^not ok ' "$out/tests.tap"); nskip=$(grep '^ok .*# SKIP' "$out/tests.tap" | grep -vc 'does not match pattern')
  # the cases for machines without CUDA are the only ones a GPU may skip
  local nskipCuda
  nskipCuda=$(grep '^ok .*# SKIP' "$out/tests.tap" | grep -v 'does not match pattern' | grep -vc ' - without CUDA')
  echo "{\"passed\": $((npass - nskip)), \"failed\": $nfail, \"skipped\": $nskip}" > "$out/tests.json"
  [ $rc -eq 0 ] || return $rc
  # on the GPU nothing may be skipped (every CUDA test must have run)
  if [ "$device" = cuda ] && [ "$nskipCuda" -gt 0 ]; then
    echo "gpu-check: $nskipCuda tests skipped on the GPU:" >&2
    grep '^ok .*# SKIP' "$out/tests.tap" | grep -v 'does not match pattern' | grep -v ' - without CUDA' >&2
    return 1
  fi
}
part tests tests

# ---- speed against PyTorch on the same device ----
step_bench() {
  local extra=()
  [ $toy = 1 ] && extra+=(--toy)
  # --breakdown: our eager step phase by phase beside PyTorch's (where the time goes, if a goal is missed)
  node dist/bench/run.js step --device "$device" --compile --breakdown "${extra[@]}" > "$out/bench-step.jsonl"
}
part step step_bench

data_bench() {
  local extra=(--case generated-256-crop224 --workers "$cores" --rounds 2)
  [ $toy = 1 ] && extra=(--case generated-256-crop224 --workers "$cores" --rounds 1 --images 256 --batch 64 --generated 320)
  node dist/bench/run.js data "${extra[@]}" > "$out/bench-data.jsonl"
}
part data data_bench

# ---- the first runs that learn ----
runs() {
  local d=$data
  if [ -z "$d" ] && [ $toy = 0 ]; then
    for c in .device/cifar10.mmpack ../shared/datasets/cifar10; do [ -e "$c" ] && { d=$c; break; }; done
  fi
  if [ -z "$d" ] && [ $toy = 1 ]; then
    d="$out/toy-data"
    node --input-type=module -e "
      const { writeImageFolder, SyntheticImages } = await import('./dist/src/data/synthetic.js');
      await writeImageFolder(new SyntheticImages({ length: 256, numClasses: 4, size: 16, seed: 1 }), '$d/train', { format: 'jpeg' });
      await writeImageFolder(new SyntheticImages({ length: 64, numClasses: 4, size: 16, seed: 2 }), '$d/val', { format: 'jpeg' });" || return 1
  fi
  [ -n "$d" ] || { echo "gpu-check: no CIFAR-10 data (--data, .device/cifar10.mmpack or ../shared/datasets/cifar10)" >&2; return 1; }
  local extra=() m=$minutes
  [ $toy = 1 ] && extra+=(--toy)
  if [ -n "$deadline" ]; then
    # what is left before the deadline, less the runs' probes, kNN at init and reports (~100 s)
    m=$(node -p "Math.min($minutes, Math.max(0.5, ($deadline * 60 - $SECONDS - 100) / 60)).toFixed(2)") || return 1
    log "runs: $m minutes of training left before the $deadline-minute deadline"
  fi
  node scripts/first-runs.mjs "$d" --out "$out" --device "$device" --minutes "$m" "${extra[@]}" > /dev/null
}
part runs runs

# ---- timings and the table ----
{
  echo "{"
  sep=""
  for p in build tests step data runs; do
    printf '%s"%s": {"seconds": %s, "status": "%s"}' "$sep" "$p" "${took[$p]:-0}" "${status[$p]:-not run}"
    sep=$',\n'
  done
  echo
  echo "}"
} > "$out/timings.json"
node --input-type=module - "$out" > "$out/summary.txt" <<'EOF'
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
const dir = process.argv[2];
const lines = (f) =>
  existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) : [];
const t = JSON.parse(readFileSync(join(dir, 'timings.json'), 'utf8'));
const phases = (b) => ['ema', 'forward', 'backward', 'optimizer'].map((k) => b[k]).join('/');
const out = [];
out.push('part     status        seconds');
for (const [k, v] of Object.entries(t)) out.push(`${k.padEnd(8)} ${String(v.status).padEnd(13)} ${v.seconds}`);
if (existsSync(join(dir, 'tests.json'))) out.push(`tests: ${readFileSync(join(dir, 'tests.json'), 'utf8').trim()}`);
out.push('', 'case | mmoco | PyTorch | unit | ours/torch | extra');
for (const r of [...lines('bench-step.jsonl'), ...lines('bench-data.jsonl')]) {
  const extra = [
    r.oursTflops !== undefined ? `${r.oursTflops} TFLOP/s (${Math.round(100 * r.oursOfPeak)}% of peak)` : '',
    r.torchCompiled !== undefined ? `compiled ${r.torchCompiled} (${r.torchCompileS} s to compile)` : '',
    r.oursGraph !== undefined ? `ours eager ${r.oursEager}, graph ${r.oursGraph}` : '',
    r.oursBreakdownMs && r.torchBreakdownMs ? `ms ema/fwd/bwd/opt: ours ${phases(r.oursBreakdownMs)}, torch ${phases(r.torchBreakdownMs)}` : '',
  ].filter(Boolean).join('; ');
  const ratio = Number.isFinite(r.ours / r.torch) ? (r.ours / r.torch).toFixed(2) + 'x' : '';
  out.push(`${r.case} | ${r.ours} | ${r.torch} | ${r.unit} | ${ratio} | ${extra}`);
}
for (const r of lines('first-runs.jsonl')) {
  out.push(`${r.case} | kNN top-1 ${r.knnTop1}% (init ${r.knnTop1Init}%) | ${r.imagesPerSec} images/s | ${r.wallS} s`);
}
console.log(out.join('\n'));
EOF
if [ -n "$archive" ]; then
  tar -czf "$archive" --exclude=checkpoint --exclude=toy-data -C "$out" . || { echo "gpu-check: could not write $archive" >&2; failed=1; }
fi
cat "$out/summary.txt"
exit $failed
