// Shared pieces of the binding: the tensor handle, argument readers and the op guard.
// The binding is thin on purpose: every exported function reads its arguments, calls one
// libtorch function and wraps the result; the few fused kernels stay generic (README.md, "What
// the addon adds to libtorch", lists them and why each exists).
#pragma once

#include <ATen/ATen.h>
#include <napi.h>
#include <ATen/Parallel.h>
#include <exception>
#include <thread>
#include <torch/version.h>

#include <string>
#include <vector>

namespace mm {

// Tensors live in a slot table; JS holds a slot number (a small integer, so passing one
// across the boundary allocates nothing). A slot owns one at::Tensor reference until it is
// released, explicitly (dispose, scopes) or by the TS layer's finaliser.
int64_t LiveCount();
// Puts a tensor in a free slot and returns the slot number (null for an undefined tensor).
Napi::Value Wrap(Napi::Env env, at::Tensor t);
Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
// The tensor in slot `id`, or nullptr when the id is not a live slot.
at::Tensor* Lookup(int64_t id);

// Op metadata carried as the napi callback data: the name for messages and a signature
// with one letter per argument (T tensor, L tensor list, . anything else).
struct OpInfo {
  const char* name;
  const char* sig;
};
// Human-readable summary of argument i: "Tensor(float32[2, 3], cpu)", "2.5", "[1, 2]".
std::string Describe(const Napi::CallbackInfo& a, size_t i);
std::string DtypeName(at::ScalarType t);

// ---- argument readers (throw a TypeError naming the argument) ----
at::Tensor& T(const Napi::CallbackInfo& a, size_t i);
c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& a, size_t i);
std::vector<at::Tensor> TL(const Napi::CallbackInfo& a, size_t i);
std::vector<c10::optional<at::Tensor>> OptTL(const Napi::CallbackInfo& a, size_t i);
at::Scalar S(const Napi::CallbackInfo& a, size_t i);
double D(const Napi::CallbackInfo& a, size_t i);
int64_t I(const Napi::CallbackInfo& a, size_t i);
c10::optional<int64_t> OptI(const Napi::CallbackInfo& a, size_t i);
c10::optional<double> OptD(const Napi::CallbackInfo& a, size_t i);
bool B(const Napi::CallbackInfo& a, size_t i);
std::string Str(const Napi::CallbackInfo& a, size_t i);
std::vector<int64_t> IL(const Napi::CallbackInfo& a, size_t i);
bool IsNullish(const Napi::CallbackInfo& a, size_t i);
at::ScalarType DT(const Napi::CallbackInfo& a, size_t i);
c10::optional<at::ScalarType> OptDT(const Napi::CallbackInfo& a, size_t i);
at::Device Dev(const Napi::CallbackInfo& a, size_t i);
// TensorOptions from (dtype code | null, device string | null, requiresGrad bool | undefined).
at::TensorOptions Opts(const Napi::CallbackInfo& a, size_t dtypeArg, size_t deviceArg);

// dtype codes shared with src/torch/dtype.ts
at::ScalarType DtypeFromCode(int64_t code);
int64_t CodeFromDtype(at::ScalarType t);

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

// Turns every C++ exception into a JS Error that names the op and its arguments, so no
// input from TypeScript can abort the process.
template <Fn F>
Napi::Value Guarded(const Napi::CallbackInfo& info);
[[noreturn]] void ThrowOpError(const Napi::CallbackInfo& info, const char* what);

template <Fn F>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    ThrowOpError(info, e.what_without_backtrace());
  } catch (const std::exception& e) {
    ThrowOpError(info, e.what());
  }
}

// Op definitions: OP(name, sig) { ... } defines a function of `a` (the call's arguments)
// and registers it, wrapped in Guarded, to be exported as `name` (addon.cc): the tensor
// library's ops (src/torch). IMAGE_OP(name, sig) does the same for the data pipeline's image
// kernels (native/src/image/, used by src/data/native/ only), exported as `image.name`, so the
// tensor library's binding holds no image code.
struct Registrar {
  OpInfo info;
  Fn fn;
  // the export object the op goes to: nullptr for the top level, else that sub-object's name
  const char* group;
  Registrar(const char* name, const char* sig, Fn guarded, const char* group = nullptr);
};
std::vector<Registrar*>& Registry();

#define MM_REGISTER_OP(name, sig, group)                                             \
  static Napi::Value op_##name(const Napi::CallbackInfo& a);                        \
  static ::mm::Registrar reg_##name(#name, sig, ::mm::Guarded<op_##name>, group);    \
  static Napi::Value op_##name(const Napi::CallbackInfo& a)
#define OP(name, sig) MM_REGISTER_OP(name, sig, nullptr)
#define IMAGE_OP(name, sig) MM_REGISTER_OP(name, sig, "image")

// Loops over pixels: compiled at O3 (the addon builds at O2) with an AVX2 clone chosen at run
// time, so that they vectorise; helpers they call must be MM_INLINE (GCC does not inline
// across different optimisation attributes otherwise).
#define MM_INLINE inline __attribute__((always_inline))
#define MM_VECTOR __attribute__((optimize("O3"), target_clones("avx2", "default")))

// Runs fn(chunk, begin, end) over [0, n) split into at most `threads` contiguous chunks, on
// threads of its own (the calling thread takes chunk 0): the addon is not compiled with OpenMP,
// so at::parallel_for's header-inline OpenMP path would run serially here. Returns the number
// of chunks; an exception in any chunk is rethrown after all have ended.
template <class Fn3>
int64_t ParallelChunks(int64_t n, int64_t threads, Fn3&& fn) {
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  std::vector<std::exception_ptr> errors(t);
  auto run = [&](int64_t j) {
    try {
      fn(j, n * j / t, n * (j + 1) / t);
    } catch (...) {
      errors[j] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int64_t j = 1; j < t; j++) pool.emplace_back(run, j);
  run(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return t;
}

// fn(begin, end) over [0, n) in at most at::get_num_threads() chunks (ParallelChunks).
template <class Fn2>
void ParallelRanges(int64_t n, Fn2&& fn) {
  ParallelChunks(n, at::get_num_threads(), [&](int64_t, int64_t begin, int64_t end) { fn(begin, end); });
}

inline Napi::Value Out(const Napi::CallbackInfo& a, at::Tensor t) { return Wrap(a.Env(), std::move(t)); }
inline Napi::Value OutList(const Napi::CallbackInfo& a, const std::vector<at::Tensor>& ts) {
  return WrapList(a.Env(), ts);
}
inline const char* OpName(const Napi::CallbackInfo& a) { return static_cast<OpInfo*>(a.Data())->name; }
inline Napi::Value Pair(const Napi::CallbackInfo& a, const std::tuple<at::Tensor, at::Tensor>& p) {
  return WrapList(a.Env(), {std::get<0>(p), std::get<1>(p)});
}


}  // namespace mm
