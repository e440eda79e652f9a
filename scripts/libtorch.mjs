#!/usr/bin/env node
// Locates libtorch for the native build, the way tch-rs does: $LIBTORCH (a libtorch
// distribution or the `torch/` folder of a pip PyTorch, CUDA or not), else Debian's
// libtorch-dev. Prints what binding.gyp asks for: `include`, `libs`, `cflags`, `describe`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function debianLayout() {
  const multiarch = ['x86_64-linux-gnu', 'aarch64-linux-gnu'].find((a) => existsSync(`/usr/lib/${a}/libtorch_cpu.so`));
  if (!multiarch || !existsSync('/usr/include/torch/csrc/api/include')) return null;
  const lib = `/usr/lib/${multiarch}`;
  return {
    root: '/usr',
    include: ['/usr/include', '/usr/include/torch/csrc/api/include'],
    lib,
    cmake: join(lib, 'cmake/Torch/TorchConfig.cmake'),
    system: true,
  };
}

function prefixLayout(root) {
  const include = [join(root, 'include'), join(root, 'include/torch/csrc/api/include')];
  const lib = join(root, 'lib');
  if (!existsSync(join(include[0], 'ATen/ATen.h')) || !existsSync(lib)) {
    throw new Error(
      `LIBTORCH=${root} does not look like libtorch: expected include/ATen/ATen.h and lib/ under it ` +
        `(a libtorch distribution, or the torch/ folder of a pip-installed PyTorch)`,
    );
  }
  return { root, include, lib, cmake: join(root, 'share/cmake/Torch/TorchConfig.cmake'), system: false };
}

export function findLibtorch() {
  if (process.env.LIBTORCH) return prefixLayout(process.env.LIBTORCH);
  const deb = debianLayout();
  if (deb) return deb;
  throw new Error(
    'libtorch not found: install Debian/Ubuntu `libtorch-dev` (scripts/setup.sh does) or set LIBTORCH=/path/to/libtorch',
  );
}

function version(lt) {
  const headers = lt.include
    // 2.9+ keeps the numbers in torch/headeronly/version.h
    .flatMap((d) =>
      ['torch/headeronly/version.h', 'torch/version.h', 'torch/csrc/api/include/torch/version.h'].map((f) =>
        join(d, f),
      ),
    )
    .filter((f) => existsSync(f));
  for (const header of headers) {
    const text = readFileSync(header, 'utf8');
    const get = (k) => (text.match(new RegExp(`#define\\s+TORCH_VERSION_${k}\\s+(\\d+)`)) || [])[1];
    if (get('MAJOR') !== undefined) return `${get('MAJOR')}.${get('MINOR')}.${get('PATCH')}`;
  }
  return 'unknown';
}

// Pip wheels before 2.6 were built with the pre-C++11 libstdc++ ABI; TorchConfig.cmake says which.
function cxx11Abi(lt) {
  if (existsSync(lt.cmake)) {
    const m = readFileSync(lt.cmake, 'utf8').match(/_GLIBCXX_USE_CXX11_ABI=(\d)/);
    if (m) return m[1];
  }
  return '1';
}

// The C++ standard the headers ask for: ATen.h refuses compilers below its `__cplusplus` floor
// (2.14's refuse C++17; 2.11's and older take it, 1.13 included).
const STANDARDS = { 201703: 'c++17', 202002: 'c++20', 202302: 'c++23' };
function cxxStandard(lt) {
  const aten = lt.include.map((d) => join(d, 'ATen/ATen.h')).find((f) => existsSync(f));
  const floors = aten
    ? [...readFileSync(aten, 'utf8').matchAll(/__cplusplus\s*<\s*(\d+)L/g)].map((m) => Number(m[1]))
    : [];
  const floor = Math.max(201703, ...floors);
  const std = STANDARDS[floor];
  if (!std) throw new Error(`${aten} asks for C++ with __cplusplus >= ${floor}, which this build does not know`);
  return std;
}

function hasCuda(lt) {
  return existsSync(join(lt.lib, 'libtorch_cuda.so'));
}

// The CUDA runtime's headers (CUDA graphs and streams include them; libtorch ships none):
// CUDA_HOME's (default /usr/local/cuda), else those of pip's nvidia-cuda-runtime package
// beside a pip torch/ folder (nvidia/cuda_runtime/include, nvidia/cu13/include, ...).
function cudaInclude(lt) {
  if (!hasCuda(lt)) return null;
  const candidates = [join(process.env.CUDA_HOME ?? '/usr/local/cuda', 'include')];
  const nvidia = join(lt.root, '..', 'nvidia');
  if (existsSync(nvidia)) for (const d of readdirSync(nvidia).sort()) candidates.push(join(nvidia, d, 'include'));
  return candidates.find((d) => existsSync(join(d, 'cuda_runtime_api.h'))) ?? null;
}

// NCCL process groups need NCCL's headers too (pip wheels ship none): NCCL_INCLUDE_DIR
// (default: the CUDA headers' folder, then pip's nvidia/nccl/include).
function ncclIncludes(lt) {
  const cuda = cudaInclude(lt);
  if (!cuda) return null;
  const nccl = [process.env.NCCL_INCLUDE_DIR, cuda, join(lt.root, '..', 'nvidia', 'nccl', 'include')].find(
    (d) => d && existsSync(join(d, 'nccl.h')),
  );
  return nccl ? [...new Set([cuda, nccl])] : null;
}

// Whether at::_fused_adamw_ takes the learning rate as a tensor (PyTorch 2.x's capturable
// fused AdamW; which 2.x added it is not worth guessing): one syntax-only compile, remembered
// per libtorch in build/.
function fusedAdamwTensorLr(lt) {
  if (!hasCuda(lt)) return false;
  const cache = join(here, '..', 'build', 'probe-fused-adamw.json');
  try {
    const c = JSON.parse(readFileSync(cache, 'utf8'));
    if (c.root === lt.root) return c.ok;
  } catch {
    // not probed yet
  }
  const dir = mkdtempSync(join(tmpdir(), 'mmoco-probe-'));
  const src = join(dir, 'probe.cc');
  writeFileSync(
    src,
    '#include <ATen/ATen.h>\n' +
      'void probe(std::vector<at::Tensor>& p, const at::Tensor& lr, const at::Tensor& s) {\n' +
      '  std::vector<at::Tensor> steps{s};\n' +
      '  at::_fused_adamw_(p, p, p, p, {}, steps, lr, 0.9, 0.999, 0.01, 1e-8, false, false);\n}\n',
  );
  const r = spawnSync(
    process.env.CXX || 'g++',
    [
      `-std=${cxxStandard(lt)}`,
      '-fsyntax-only',
      `-D_GLIBCXX_USE_CXX11_ABI=${cxx11Abi(lt)}`,
      ...lt.include.map((d) => `-I${d}`),
      src,
    ],
    { stdio: 'ignore' },
  );
  rmSync(dir, { recursive: true, force: true });
  const ok = r.status === 0;
  try {
    mkdirSync(dirname(cache), { recursive: true });
    writeFileSync(cache, JSON.stringify({ root: lt.root, ok }));
  } catch {
    // a read-only checkout probes again next time
  }
  return ok;
}

function libs(lt) {
  const out = [`-L${lt.lib}`];
  if (!lt.system) out.push(`-Wl,-rpath,${lt.lib}`);
  // torch_cuda registers CUDA kernels from static initialisers; nothing references it
  // directly, so keep it linked even with --as-needed.
  if (hasCuda(lt)) out.push('-Wl,--no-as-needed', '-ltorch_cuda', '-Wl,--as-needed');
  out.push('-ltorch', '-ltorch_cpu', '-lc10');
  if (existsSync(join(lt.lib, 'libc10_cuda.so'))) out.push('-lc10_cuda');
  return out;
}

const what = process.argv[2];
function query(what) {
  const lt = findLibtorch();
  switch (what) {
    case 'include':
      console.log([...lt.include, ...(ncclIncludes(lt) ?? [cudaInclude(lt)].filter(Boolean))].join(' '));
      break;
    case 'libs':
      console.log(libs(lt).join(' '));
      break;
    case 'cflags':
      console.log(
        [
          `-std=${cxxStandard(lt)}`,
          `-D_GLIBCXX_USE_CXX11_ABI=${cxx11Abi(lt)}`,
          `-DMMOCO_WITH_CUDA=${hasCuda(lt) ? 1 : 0}`,
          `-DMMOCO_CUDA_HEADERS=${cudaInclude(lt) ? 1 : 0}`,
          `-DMMOCO_FUSED_ADAMW_TENSOR_LR=${fusedAdamwTensorLr(lt) ? 1 : 0}`,
          ...(ncclIncludes(lt) ? ['-DMM_WITH_NCCL=1', '-DUSE_C10D_NCCL=1'] : []),
        ].join(' '),
      );
      break;
    case 'describe':
      console.log(
        JSON.stringify({
          root: lt.root,
          version: version(lt),
          cuda: hasCuda(lt),
          cudaHeaders: cudaInclude(lt),
          nccl: ncclIncludes(lt) !== null,
          cxx11Abi: cxx11Abi(lt),
          std: cxxStandard(lt),
          libs: readdirSync(lt.lib).filter((f) => /^lib(torch|c10).*\.so$/.test(f)),
        }),
      );
      break;
    default:
      console.error(`unknown query ${what}: use include | libs | cflags | describe`);
      process.exit(2);
  }
}

// a missing or odd libtorch is reported by its message, not a stack trace
if (what) {
  try {
    query(what);
  } catch (e) {
    console.error(`mmoco: ${e.message}`);
    process.exit(1);
  }
}
