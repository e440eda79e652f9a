// Autograd, grad mode, random generators, threads, devices and BLAS introspection.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/cuda.h>

#include "common.h"

namespace mm {

// ---- autocast (mixed precision) ----
// libtorch's own autocast: while enabled for a device type, the dispatcher runs the ops of its
// lower-precision list (matmul, linear, conv, bmm, ...) in `dtype` and keeps the fp32 list
// (softmax, norms, losses, ...) in float32. The state is thread-local, as in PyTorch.
// The 2.4+ API takes the device type; 1.13 to 2.3 have one setter per device.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define MM_AUTOCAST_BY_DEVICE 1
#endif

static bool AutocastIsCuda(const Napi::CallbackInfo& a, size_t i) {
  std::string d = Str(a, i);
  if (d == "cpu") return false;
  if (d == "cuda") return true;
  throw std::invalid_argument("autocast: device type must be 'cpu' or 'cuda', got '" + d + "'");
}

static bool AutocastEnabled(bool cuda) {
#ifdef MM_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

static at::ScalarType AutocastDtype(bool cuda) {
#ifdef MM_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU);
#else
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

static void AutocastSet(bool cuda, bool enabled, at::ScalarType dtype) {
#ifdef MM_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, enabled);
  at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, dtype);
#else
  if (cuda) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

// autocastState(deviceType) -> [enabled, dtype code]
OP(autocastState, "") {
  bool cuda = AutocastIsCuda(a, 0);
  Napi::Array r = Napi::Array::New(a.Env(), 2);
  r.Set(0u, Napi::Boolean::New(a.Env(), AutocastEnabled(cuda)));
  r.Set(1u, Napi::Number::New(a.Env(), static_cast<double>(CodeFromDtype(AutocastDtype(cuda)))));
  return r;
}

// autocastEnter(deviceType, enabled, dtype code): sets the state and counts the nesting, as
// torch.autocast.__enter__ does.
OP(autocastEnter, "") {
  bool cuda = AutocastIsCuda(a, 0);
  at::ScalarType dt = DT(a, 2);
  if (dt != at::kBFloat16 && dt != at::kHalf && dt != at::kFloat) {
    throw std::invalid_argument("autocast: dtype must be bfloat16, float16 or float32, got " + DtypeName(dt));
  }
  AutocastSet(cuda, B(a, 1), dt);
  at::autocast::increment_nesting();
  return a.Env().Undefined();
}

// autocastExit(deviceType, enabled, dtype code): restores the state the matching enter saw; the
// outermost exit drops the cache of casted weights, as torch.autocast.__exit__ does.
OP(autocastExit, "") {
  bool cuda = AutocastIsCuda(a, 0);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  AutocastSet(cuda, B(a, 1), DT(a, 2));
  return a.Env().Undefined();
}

// ---- autograd ----
OP(requiresGrad, "T") { return Napi::Boolean::New(a.Env(), T(a, 0).requires_grad()); }
OP(requiresGrad_, "T") {
  T(a, 0).requires_grad_(B(a, 1));
  return a[0];
}
OP(isLeaf, "T") { return Napi::Boolean::New(a.Env(), T(a, 0).is_leaf()); }
OP(retainGrad, "T") {
  T(a, 0).retain_grad();
  return a[0];
}
OP(gradFn, "T") {
  const auto& fn = T(a, 0).grad_fn();
  if (!fn) return a.Env().Null();
  return Napi::String::New(a.Env(), fn->name());
}
// grad(t): a new handle on t.grad, or null when there is none.
OP(grad, "T") { return Out(a, T(a, 0).grad()); }
// setGrad(t, g | null)
OP(setGrad, "TT") {
  if (IsNullish(a, 1))
    T(a, 0).mutable_grad().reset();
  else
    T(a, 0).mutable_grad() = T(a, 1);
  return a.Env().Undefined();
}
OP(detach, "T") { return Out(a, T(a, 0).detach()); }
OP(detach_, "T") {
  T(a, 0).detach_();
  return a[0];
}
// setData(t, src): t now holds src's data (shape, dtype, device may change) while keeping its
// autograd identity, like PyTorch's `param.data = src` (used to move modules between devices).
OP(setData, "TT") {
  T(a, 0).set_data(T(a, 1));
  return a[0];
}
// sameTensor(a, b): both handles refer to the same TensorImpl.
OP(sameTensor, "TT") { return Napi::Boolean::New(a.Env(), T(a, 0).is_same(T(a, 1))); }
// Gradients of the outputs: an array whose null entries mean "ones" (scalar outputs).
static std::vector<at::Tensor> GradOutputs(const Napi::CallbackInfo& a, size_t i) {
  std::vector<at::Tensor> grads;
  if (IsNullish(a, i)) return grads;
  for (auto& g : OptTL(a, i)) grads.push_back(g ? *g : at::Tensor());
  return grads;
}
// backward(outputs[], gradOutputs[] (entries may be null), retainGraph, createGraph)
OP(backward, "LL") {
  std::vector<at::Tensor> outs = TL(a, 0);
  std::vector<at::Tensor> grads = GradOutputs(a, 1);
  bool create = B(a, 3);
  c10::optional<bool> retain;
  if (!IsNullish(a, 2)) retain = B(a, 2);
  torch::autograd::backward(outs, grads, retain, create);
  return a.Env().Undefined();
}
// autogradGrad(outputs[], inputs[], gradOutputs[]?, retainGraph, createGraph, allowUnused)
OP(autogradGrad, "LLL") {
  std::vector<at::Tensor> outs = TL(a, 0), ins = TL(a, 1);
  std::vector<at::Tensor> grads = GradOutputs(a, 2);
  c10::optional<bool> retain;
  if (!IsNullish(a, 3)) retain = B(a, 3);
  return OutList(a, torch::autograd::grad(outs, ins, grads, retain, B(a, 4), B(a, 5)));
}
OP(setGradEnabled, "") {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(B(a, 0));
  return Napi::Boolean::New(a.Env(), prev);
}
OP(isGradEnabled, "") { return Napi::Boolean::New(a.Env(), at::GradMode::is_enabled()); }

// ---- random generators ----
static at::Generator GeneratorFor(const Napi::CallbackInfo& a, size_t i) {
  at::Device dev = Dev(a, i);
  if (dev.is_cpu()) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(dev);
}
// manualSeed(seed): seeds the CPU generator and every CUDA device's, like torch.manual_seed.
OP(manualSeed, "") {
  uint64_t seed = static_cast<uint64_t>(I(a, 0));
  {
    at::Generator g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(seed);
  }
  if (at::hasCUDA()) torch::cuda::manual_seed_all(seed);
  return a.Env().Undefined();
}
OP(initialSeed, "") { return Napi::Number::New(a.Env(), static_cast<double>(GeneratorFor(a, 0).current_seed())); }
// getRngState(device?) -> uint8 tensor; setRngState(state, device?) restores it exactly.
OP(getRngState, "") {
  at::Generator g = GeneratorFor(a, 0);
  std::lock_guard<std::mutex> lock(g.mutex());
  return Out(a, g.get_state());
}
OP(setRngState, "T") {
  at::Generator g = GeneratorFor(a, 1);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(T(a, 0));
  return a.Env().Undefined();
}

// ---- threads ----
OP(setNumThreads, "") {
  at::set_num_threads(static_cast<int>(I(a, 0)));
  return a.Env().Undefined();
}
OP(getNumThreads, "") { return Napi::Number::New(a.Env(), at::get_num_threads()); }
OP(parallelInfo, "") { return Napi::String::New(a.Env(), at::get_parallel_info()); }

// ---- BLAS: which library answers sgemm_ decides matmul speed ----
// vendor: openblas | mkl | bundled (inside libtorch, as in pip wheels) | reference (Debian's
// netlib libblas, ~40x slower) | other | none.
OP(blasInfo, "") {
  Napi::Object o = Napi::Object::New(a.Env());
  auto sym = [](const char* name) { return dlsym(RTLD_DEFAULT, name); };
  auto config = reinterpret_cast<char* (*)()>(sym("openblas_get_config"));
  auto parallel = reinterpret_cast<int (*)()>(sym("openblas_get_parallel"));
  auto threads = reinterpret_cast<int (*)()>(sym("openblas_get_num_threads"));
  auto corename = reinterpret_cast<char* (*)()>(sym("openblas_get_corename"));
  std::string library;
  Dl_info info;
  void* sgemm = sym("sgemm_");
  if (sgemm && dladdr(sgemm, &info) && info.dli_fname) {
    char* real = realpath(info.dli_fname, nullptr);
    library = real ? real : info.dli_fname;
    free(real);
  }
  o.Set("library", library);
  std::string base = library.substr(library.find_last_of('/') + 1);
  if (config) {
    o.Set("vendor", "openblas");
    // The file holding OpenBLAS itself (Debian's libblas.so.3 can be a wrapper around it).
    if (dladdr(reinterpret_cast<void*>(config), &info) && info.dli_fname) {
      char* real = realpath(info.dli_fname, nullptr);
      o.Set("engine", real ? real : info.dli_fname);
      free(real);
    }
    o.Set("config", config());
    int p = parallel ? parallel() : -1;
    o.Set("parallel", p == 0 ? "serial" : p == 1 ? "pthread" : p == 2 ? "openmp" : "unknown");
    if (threads) o.Set("threads", threads());
    if (corename) o.Set("core", corename());
  } else if (sym("mkl_get_version_string") || sym("MKL_Get_Version_String")) {
    o.Set("vendor", "mkl");
  } else if (base.rfind("libtorch", 0) == 0) {
    o.Set("vendor", "bundled");
  } else if (library.find("/blas/libblas.so") != std::string::npos) {
    o.Set("vendor", "reference");
  } else {
    o.Set("vendor", sgemm ? "other" : "none");
  }
  return o;
}
// openblasSetNumThreads(n): OpenBLAS's own pool (its pthread build ignores at::set_num_threads).
OP(blasSetNumThreads, "") {
  auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set) set(static_cast<int>(I(a, 0)));
  return Napi::Boolean::New(a.Env(), set != nullptr);
}

// ---- devices and build ----
OP(cudaIsAvailable, "") { return Napi::Boolean::New(a.Env(), torch::cuda::is_available()); }
OP(cudaDeviceCount, "") { return Napi::Number::New(a.Env(), static_cast<double>(torch::cuda::device_count())); }
OP(cudaSynchronize, "") {
  torch::cuda::synchronize(IsNullish(a, 0) ? -1 : I(a, 0));
  return a.Env().Undefined();
}
OP(buildInfo, "") {
  Napi::Object o = Napi::Object::New(a.Env());
  o.Set("torchVersion", TORCH_VERSION);
  o.Set("withCuda", static_cast<bool>(MMOCO_WITH_CUDA));
  return o;
}


}  // namespace mm
