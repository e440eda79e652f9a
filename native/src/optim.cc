// Optimiser steps over lists of tensors (AdamW, SGD, LARS) and gradient-norm clipping: one
// call updates a whole parameter group. They know nothing of models: each takes a list of
// parameters, reads each one's `.grad`, and updates the parameter and its state tensors in
// place; a parameter whose grad is undefined is skipped, as PyTorch's optimisers skip it.
//
// On the CPU, float32 and float64 tensors are updated by one fused pass per tensor (reading
// param, grad and state once, writing param and state once, no temporaries), run on libtorch's
// thread pool through TensorIterator. The arithmetic is PyTorch's, operation by operation and
// in the tensor's dtype, so results agree with torch.optim to rounding (PyTorch's own kernels
// may fuse a multiply-add where this code rounds twice). Other dtypes and devices (CUDA,
// bfloat16, ...) take torch.optim's multi-tensor path, the same `_foreach_` ops over the list
// (multi-tensor kernels on CUDA); AdamW on CUDA uses libtorch's fused kernel, as
// AdamW(fused=True), where libtorch has one (2.x). LARS, a per-tensor rule, uses tensor ops
// there.
#include <ATen/TensorIterator.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/variable.h>

#include <cmath>

#include "common.h"

// The fused loops below vectorise (with -fno-math-errno, binding.gyp) when GCC's cost model
// accepts loops with a remainder and splits loops on invariant conditions; its -O2 defaults
// ("very cheap", no unswitching) do neither. Only the functions of this file are affected.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic", "unswitch-loops")
#endif

namespace mm {
namespace {

bool Fusable(const at::Tensor& p, const at::Tensor& g) {
  at::ScalarType t = p.scalar_type();
  return p.device().is_cpu() && (t == at::kFloat || t == at::kDouble) && p.layout() == at::kStrided &&
         g.layout() == at::kStrided && g.scalar_type() == t && g.device() == p.device();
}

void CheckState(const char* what, size_t i, const at::Tensor& p, const c10::optional<at::Tensor>& s) {
  if (!s || !s->defined())
    throw std::invalid_argument(std::string(what) + "[" + std::to_string(i) + "] is missing for a parameter with a grad");
  if (s->sizes() != p.sizes() || s->scalar_type() != p.scalar_type() || s->device() != p.device())
    throw std::invalid_argument(std::string(what) + "[" + std::to_string(i) + "] must have the parameter's shape, " +
                                "dtype and device");
}

void CheckGrad(size_t i, const at::Tensor& p, const at::Tensor& g) {
  if (g.sizes() != p.sizes())
    throw std::invalid_argument("params[" + std::to_string(i) + "].grad has another shape than the parameter");
  if (g.is_sparse()) throw std::invalid_argument("sparse gradients are not supported");
}

void CheckLengths(size_t n, const std::vector<c10::optional<at::Tensor>>& l, const char* what) {
  if (l.size() != n)
    throw std::invalid_argument(std::string(what) + " has " + std::to_string(l.size()) + " entries for " +
                                std::to_string(n) + " params");
}

// Runs `body(ptrs, n, strides)` over runs of elements of same-shaped tensors (the outputs,
// then the input), split over libtorch's thread pool by TensorIterator. `body` gets one
// pointer per tensor and, where the run is not contiguous in all of them, their element
// strides (else null); it must treat every element independently.
template <typename T, size_t K, typename Body>
void ForEach(const std::array<const at::Tensor*, K>& outs, const at::Tensor& in, Body body) {
  at::TensorIteratorConfig cfg;
  cfg.set_check_mem_overlap(true).check_all_same_dtype(true).resize_outputs(false);
  for (const at::Tensor* t : outs) cfg.add_output(*t);
  cfg.add_input(in);
  at::TensorIterator it = cfg.build();
  constexpr size_t N = K + 1;
  it.for_each([&](char** data, const int64_t* strides, int64_t size0, int64_t size1) {
    std::array<char*, N> base;
    for (size_t k = 0; k < N; ++k) base[k] = data[k];
    bool contiguous = true;
    for (size_t k = 0; k < N; ++k) contiguous = contiguous && strides[k] == static_cast<int64_t>(sizeof(T));
    for (int64_t j = 0; j < size1; ++j) {
      std::array<T*, N> ptr;
      for (size_t k = 0; k < N; ++k) ptr[k] = reinterpret_cast<T*>(base[k] + j * strides[N + k]);
      if (contiguous) {
        body(ptr, size0, nullptr);
      } else {
        std::array<int64_t, N> st;
        for (size_t k = 0; k < N; ++k) st[k] = strides[k] / static_cast<int64_t>(sizeof(T));
        body(ptr, size0, st.data());
      }
    }
  });
}

void Bump(const at::Tensor& t) { torch::autograd::impl::bump_version(t); }

// ---- AdamW (torch.optim.AdamW, decoupled weight decay) ----

#if __has_include(<ATen/ops/_fused_adamw.h>)
// Whether libtorch's fused AdamW kernel takes these lists: CUDA tensors of one floating dtype
// on one device, all contiguous.
bool FusedAdamWOk(const std::vector<at::Tensor>& params, std::initializer_list<const std::vector<at::Tensor>*> others) {
  const at::Tensor& p0 = params[0];
  if (!p0.is_cuda() || !at::isFloatingType(p0.scalar_type())) return false;
  auto ok = [&](const at::Tensor& t) {
    return t.device() == p0.device() && t.scalar_type() == p0.scalar_type() && t.is_contiguous();
  };
  for (const at::Tensor& t : params)
    if (!ok(t)) return false;
  for (const std::vector<at::Tensor>* l : others)
    for (const at::Tensor& t : *l)
      if (!ok(t)) return false;
  return true;
}
#endif

template <typename T>
struct AdamWConst {
  T decay, beta1, omb1, beta2, omb2, bc2Sqrt, eps, negStepSize;
};

// One element: the operations of torch.optim.AdamW in its order, each rounded to T.
template <typename T, bool Ams, bool Maximize>
inline void AdamWElem(T& p, T& m, T& v, T* vmax, T g, const AdamWConst<T>& c) {
  if (Maximize) g = -g;
  T pi = p * c.decay;
  T mi = m * c.beta1 + c.omb1 * g;
  T vi = v * c.beta2 + c.omb2 * g * g;
  m = mi;
  v = vi;
  T denom;
  if (Ams) {
    T x = *vmax < vi ? vi : *vmax;
    if (std::isnan(vi)) x = vi;  // torch.maximum propagates NaN
    *vmax = x;
    denom = std::sqrt(x) / c.bc2Sqrt + c.eps;
  } else {
    denom = std::sqrt(vi) / c.bc2Sqrt + c.eps;
  }
  p = pi + c.negStepSize * mi / denom;
}

// Contiguous runs: restrict-qualified pointers and constants by value, so the loop vectorises.
template <typename T, bool Maximize>
void AdamWRun(T* __restrict p, T* __restrict m, T* __restrict v, const T* __restrict g, int64_t n,
              const AdamWConst<T> c) {
  for (int64_t i = 0; i < n; ++i) AdamWElem<T, false, Maximize>(p[i], m[i], v[i], nullptr, g[i], c);
}
template <typename T, bool Maximize>
void AdamWRunAms(T* __restrict p, T* __restrict m, T* __restrict v, T* __restrict vmax, const T* __restrict g,
                 int64_t n, const AdamWConst<T> c) {
  for (int64_t i = 0; i < n; ++i) AdamWElem<T, true, Maximize>(p[i], m[i], v[i], vmax + i, g[i], c);
}

template <typename T, bool Ams, bool Maximize>
void AdamWFused(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v,
                const at::Tensor* vmax, const AdamWConst<T>& c) {
  if (Ams) {
    ForEach<T, 4>({&p, &m, &v, vmax}, g, [&](const std::array<T*, 5>& d, int64_t n, const int64_t* st) {
      if (!st) return AdamWRunAms<T, Maximize>(d[0], d[1], d[2], d[3], d[4], n, c);
      for (int64_t i = 0; i < n; ++i)
        AdamWElem<T, true, Maximize>(d[0][i * st[0]], d[1][i * st[1]], d[2][i * st[2]], d[3] + i * st[3],
                                     d[4][i * st[4]], c);
    });
  } else {
    ForEach<T, 3>({&p, &m, &v}, g, [&](const std::array<T*, 4>& d, int64_t n, const int64_t* st) {
      if (!st) return AdamWRun<T, Maximize>(d[0], d[1], d[2], d[3], n, c);
      for (int64_t i = 0; i < n; ++i)
        AdamWElem<T, false, Maximize>(d[0][i * st[0]], d[1][i * st[1]], d[2][i * st[2]], nullptr, d[3][i * st[3]],
                                      c);
    });
  }
}

template <typename T>
void AdamWDispatch(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v,
                   const at::Tensor* vmax, bool maximize, double decay, double beta1, double beta2, double bc2Sqrt,
                   double eps, double negStepSize) {
  AdamWConst<T> c{T(decay), T(beta1), T(1 - beta1), T(beta2), T(1 - beta2), T(bc2Sqrt), T(eps), T(negStepSize)};
  if (vmax) {
    if (maximize) AdamWFused<T, true, true>(p, g, m, v, vmax, c);
    else AdamWFused<T, true, false>(p, g, m, v, vmax, c);
  } else {
    if (maximize) AdamWFused<T, false, true>(p, g, m, v, vmax, c);
    else AdamWFused<T, false, false>(p, g, m, v, vmax, c);
  }
}

// adamwStep(params, expAvgs, expAvgSqs, maxExpAvgSqs | null, steps, lr, beta1, beta2, eps,
// weightDecay, amsgrad, maximize) -> updated: boolean[]
// steps[i] is parameter i's step count before this step (it is taken as steps[i] + 1, as
// PyTorch increments `step` first); the caller increments its counts where updated[i].
OP(adamwStep, "LLLL") {
  std::vector<at::Tensor> params = TL(a, 0);
  auto expAvgs = OptTL(a, 1);
  auto expAvgSqs = OptTL(a, 2);
  bool amsgrad = B(a, 10);
  std::vector<c10::optional<at::Tensor>> maxSqs;
  if (amsgrad) maxSqs = OptTL(a, 3);
  std::vector<int64_t> steps = IL(a, 4);
  double lr = D(a, 5), beta1 = D(a, 6), beta2 = D(a, 7), eps = D(a, 8), wd = D(a, 9);
  bool maximize = B(a, 11);
  size_t n = params.size();
  CheckLengths(n, expAvgs, "expAvgs");
  CheckLengths(n, expAvgSqs, "expAvgSqs");
  if (amsgrad) CheckLengths(n, maxSqs, "maxExpAvgSqs");
  if (steps.size() != n) throw std::invalid_argument("steps must have one entry per param");
  c10::NoGradGuard noGrad;
  Napi::Array updated = Napi::Array::New(a.Env(), n);
  struct {
    std::vector<at::Tensor> params, grads, m, v, vmax;
    std::vector<at::Scalar> negStepSize, bc2Sqrt;
    std::vector<double> step;
  } rest;  // the tensors the fused loop does not take
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    updated.Set(static_cast<uint32_t>(i), Napi::Boolean::New(a.Env(), g.defined()));
    if (!g.defined()) continue;
    CheckGrad(i, p, g);
    CheckState("expAvgs", i, p, expAvgs[i]);
    CheckState("expAvgSqs", i, p, expAvgSqs[i]);
    if (amsgrad) CheckState("maxExpAvgSqs", i, p, maxSqs[i]);
    const at::Tensor& m = *expAvgs[i];
    const at::Tensor& v = *expAvgSqs[i];
    const at::Tensor* vmax = amsgrad ? &*maxSqs[i] : nullptr;
    double step = static_cast<double>(steps[i] + 1);
    double bc1 = 1 - std::pow(beta1, step);
    double bc2 = 1 - std::pow(beta2, step);
    double negStepSize = (lr / bc1) * -1;
    double bc2Sqrt = std::sqrt(bc2);
    double decay = 1 - lr * wd;
    if (Fusable(p, g)) {
      if (p.scalar_type() == at::kFloat)
        AdamWDispatch<float>(p, g, m, v, vmax, maximize, decay, beta1, beta2, bc2Sqrt, eps, negStepSize);
      else
        AdamWDispatch<double>(p, g, m, v, vmax, maximize, decay, beta1, beta2, bc2Sqrt, eps, negStepSize);
      Bump(p);
      Bump(m);
      Bump(v);
      if (vmax) Bump(*vmax);
    } else {
      rest.params.push_back(p);
      rest.grads.push_back(g);
      rest.m.push_back(m);
      rest.v.push_back(v);
      if (vmax) rest.vmax.push_back(*vmax);
      rest.negStepSize.emplace_back(negStepSize);
      rest.bc2Sqrt.emplace_back(bc2Sqrt);
      rest.step.push_back(step);
    }
  }
#if __has_include(<ATen/ops/_fused_adamw.h>)
  // CUDA (libtorch 2.x): torch.optim.AdamW(fused=True)'s kernel, one launch per few tensors.
  if (!rest.params.empty() && FusedAdamWOk(rest.params, {&rest.grads, &rest.m, &rest.v, &rest.vmax})) {
    std::vector<float> next(rest.params.size());
    for (size_t k = 0; k < next.size(); ++k) next[k] = static_cast<float>(rest.step[k]);
    // the kernel reads each step count (already incremented, as PyTorch does before the call)
    at::Tensor steps = at::tensor(next, at::kFloat).to(rest.params[0].device());
    std::vector<at::Tensor> stepList;
    for (size_t k = 0; k < next.size(); ++k) stepList.push_back(steps.select(0, static_cast<int64_t>(k)));
    at::_fused_adamw_(rest.params, rest.grads, rest.m, rest.v, rest.vmax, stepList, lr, beta1, beta2, wd, eps, amsgrad,
                      maximize);
    return updated;
  }
#endif
  if (!rest.params.empty()) {
    // torch.optim.AdamW's multi-tensor (foreach=True) step, for other devices and dtypes
    std::vector<at::Tensor> grads = maximize ? at::_foreach_neg(rest.grads) : rest.grads;
    at::_foreach_mul_(rest.params, 1 - lr * wd);
    at::_foreach_mul_(rest.m, beta1);
    at::_foreach_add_(rest.m, grads, 1 - beta1);
    at::_foreach_mul_(rest.v, beta2);
    at::_foreach_addcmul_(rest.v, grads, grads, 1 - beta2);
    if (amsgrad) at::_foreach_maximum_(rest.vmax, rest.v);
    std::vector<at::Tensor> denom = at::_foreach_sqrt(amsgrad ? rest.vmax : rest.v);
    at::_foreach_div_(denom, rest.bc2Sqrt);
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(rest.params, rest.m, denom, rest.negStepSize);
  }
  return updated;
}

// ---- AdamW with the step count and the learning rate in tensors (CUDA graphs) ----

// adamwTensorLr(params, grads, expAvg, expAvgSq, step, lr, beta1, beta2, eps, weightDecay):
// torch.optim.AdamW(capturable=True)'s update. `step` (a float32 scalar tensor shared by all
// parameters) is incremented here and `lr` is read from its tensor, so nothing is read back to
// the host and a captured graph replays with the values of the moment. On CUDA with a libtorch
// whose fused kernel takes a tensor lr (probed at build time): that kernel; elsewhere the same
// arithmetic as tensor ops (which the CPU tests compare with adamwStep).
OP(adamwTensorLr, "LLLLTT") {
  std::vector<at::Tensor> params = TL(a, 0), grads = TL(a, 1), m = TL(a, 2), v = TL(a, 3);
  at::Tensor step = T(a, 4), lr = T(a, 5);
  const double beta1 = D(a, 6), beta2 = D(a, 7), eps = D(a, 8), wd = D(a, 9);
  if (grads.size() != params.size() || m.size() != params.size() || v.size() != params.size())
    throw std::invalid_argument("adamwTensorLr: params, grads, expAvg and expAvgSq must have the same length");
  if (step.numel() != 1 || lr.numel() != 1) throw std::invalid_argument("adamwTensorLr: step and lr must be scalars");
  at::NoGradGuard noGrad;
  step.add_(1);
#if MMOCO_FUSED_ADAMW_TENSOR_LR
  if (!params.empty() && step.is_cuda() && lr.is_cuda() && FusedAdamWOk(params, {&grads, &m, &v})) {
    std::vector<at::Tensor> steps(params.size(), step);
    at::_fused_adamw_(params, grads, m, v, {}, steps, lr, beta1, beta2, wd, eps, false, false);
    for (auto& t : params) Bump(t);
    return a.Env().Undefined();
  }
#endif
  at::Tensor bc1 = at::pow(beta1, step).neg_().add_(1);
  at::Tensor bc2Sqrt = at::pow(beta2, step).neg_().add_(1).sqrt_();
  at::Tensor decay = lr.mul(wd).neg_().add_(1);
  at::Tensor stepSize = lr.div(bc1);
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor& p = params[i];
    const at::Tensor& g = grads[i];
    p.mul_(decay);
    m[i].mul_(beta1).add_(g, 1 - beta1);
    v[i].mul_(beta2).addcmul_(g, g, 1 - beta2);
    at::Tensor denom = v[i].sqrt().div_(bc2Sqrt).add_(eps);
    p.sub_(m[i].div(denom).mul_(stepSize));
  }
  return a.Env().Undefined();
}

// ---- SGD (torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay) ----

template <typename T>
struct SgdConst {
  T wd, momentum, omDampening, negLr;
  bool hasWd, hasMomentum, nesterov, fresh, maximize;
};

template <typename T>
inline void SgdElem(T& p, T* buf, T g, const SgdConst<T>& c) {
  T d = c.maximize ? -g : g;
  if (c.hasWd) d = d + c.wd * p;
  if (c.hasMomentum) {
    T b = c.fresh ? d : *buf * c.momentum + c.omDampening * d;
    *buf = b;
    d = c.nesterov ? d + c.momentum * b : b;
  }
  p = p + c.negLr * d;
}

template <typename T>
void SgdRun(T* __restrict p, T* __restrict buf, const T* __restrict g, int64_t n, const SgdConst<T> c) {
  for (int64_t i = 0; i < n; ++i) SgdElem<T>(p[i], buf + i, g[i], c);
}
template <typename T>
void SgdRunNoBuf(T* __restrict p, const T* __restrict g, int64_t n, const SgdConst<T> c) {
  for (int64_t i = 0; i < n; ++i) SgdElem<T>(p[i], nullptr, g[i], c);
}

template <typename T>
void SgdFused(const at::Tensor& p, const at::Tensor& g, const at::Tensor* buf, const SgdConst<T>& c) {
  if (buf) {
    ForEach<T, 2>({&p, buf}, g, [&](const std::array<T*, 3>& d, int64_t n, const int64_t* st) {
      if (!st) return SgdRun<T>(d[0], d[1], d[2], n, c);
      for (int64_t i = 0; i < n; ++i) SgdElem<T>(d[0][i * st[0]], d[1] + i * st[1], d[2][i * st[2]], c);
    });
  } else {
    ForEach<T, 1>({&p}, g, [&](const std::array<T*, 2>& d, int64_t n, const int64_t* st) {
      if (!st) return SgdRunNoBuf<T>(d[0], d[1], n, c);
      for (int64_t i = 0; i < n; ++i) SgdElem<T>(d[0][i * st[0]], nullptr, d[1][i * st[1]], c);
    });
  }
}

// sgdStep(params, momentumBuffers | null, fresh | null, lr, momentum, dampening, weightDecay,
// nesterov, maximize) -> updated: boolean[]
// With momentum, every parameter with a grad needs a buffer of its shape; fresh[i] (0/1) marks
// a buffer allocated for this step, which is set to the update direction (PyTorch's
// `buf = clone(d_p)`) instead of being decayed.
OP(sgdStep, "LL") {
  std::vector<at::Tensor> params = TL(a, 0);
  double lr = D(a, 3), momentum = D(a, 4), dampening = D(a, 5), wd = D(a, 6);
  bool nesterov = B(a, 7), maximize = B(a, 8);
  size_t n = params.size();
  std::vector<c10::optional<at::Tensor>> bufs;
  std::vector<int64_t> fresh(n, 0);
  if (momentum != 0) {
    bufs = OptTL(a, 1);
    CheckLengths(n, bufs, "momentumBuffers");
    if (!IsNullish(a, 2)) fresh = IL(a, 2);
    if (fresh.size() != n) throw std::invalid_argument("fresh must have one entry per param");
  }
  if (nesterov && (momentum <= 0 || dampening != 0))
    throw std::invalid_argument("Nesterov momentum requires a momentum and zero dampening");
  c10::NoGradGuard noGrad;
  Napi::Array updated = Napi::Array::New(a.Env(), n);
  struct {
    std::vector<at::Tensor> params, grads, bufs, freshBufs;
    std::vector<bool> fresh;
  } rest;  // the tensors the fused loop does not take
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    updated.Set(static_cast<uint32_t>(i), Napi::Boolean::New(a.Env(), g.defined()));
    if (!g.defined()) continue;
    CheckGrad(i, p, g);
    const at::Tensor* buf = nullptr;
    if (momentum != 0) {
      CheckState("momentumBuffers", i, p, bufs[i]);
      buf = &*bufs[i];
    }
    if (Fusable(p, g)) {
      auto run = [&](auto zero) {
        using T = decltype(zero);
        SgdConst<T> c{T(wd), T(momentum), T(1 - dampening), T(-lr), wd != 0, momentum != 0, nesterov,
                      fresh[i] != 0, maximize};
        SgdFused<T>(p, g, buf, c);
      };
      if (p.scalar_type() == at::kFloat) run(0.0f);
      else run(0.0);
      Bump(p);
      if (buf) Bump(*buf);
    } else {
      rest.params.push_back(p);
      rest.grads.push_back(g);
      if (buf) {
        (fresh[i] ? rest.freshBufs : rest.bufs).push_back(*buf);
        rest.fresh.push_back(fresh[i] != 0);
      }
    }
  }
  if (!rest.params.empty()) {
    // torch.optim.SGD's multi-tensor (foreach=True) step, for other devices and dtypes. (PyTorch
    // 1.13 adds the Nesterov term into the grads in place there; here they stay untouched.)
    std::vector<at::Tensor> d = maximize ? at::_foreach_neg(rest.grads) : rest.grads;
    if (wd != 0) d = at::_foreach_add(d, rest.params, wd);
    if (momentum != 0) {
      if (!rest.bufs.empty()) {
        std::vector<at::Tensor> dOld;
        for (size_t k = 0; k < d.size(); ++k)
          if (!rest.fresh[k]) dOld.push_back(d[k]);
        at::_foreach_mul_(rest.bufs, momentum);
        at::_foreach_add_(rest.bufs, dOld, 1 - dampening);
      }
      std::vector<at::Tensor> bufs;
      size_t kOld = 0, kNew = 0;
      for (size_t k = 0; k < d.size(); ++k) {
        if (rest.fresh[k]) {
          rest.freshBufs[kNew].copy_(d[k]);
          bufs.push_back(rest.freshBufs[kNew++]);
        } else {
          bufs.push_back(rest.bufs[kOld++]);
        }
      }
      d = nesterov ? at::_foreach_add(d, bufs, momentum) : bufs;
    }
    at::_foreach_add_(rest.params, d, -lr);
  }
  return updated;
}

// ---- LARS (MoCo v3's moco/optimizer.py) ----

template <typename T>
struct LarsConst {
  T momentum, negLr, q;
};

// mu = momentum * mu + dp * q; p += -lr * mu   (dp already holds grad + wd * p where it applies)
template <typename T>
inline void LarsElem(T& p, T& mu, T dp, const LarsConst<T>& c) {
  T m = mu * c.momentum + dp * c.q;
  mu = m;
  p = p + c.negLr * m;
}
template <typename T>
void LarsRun(T* __restrict p, T* __restrict mu, const T* __restrict dp, int64_t n, const LarsConst<T> c) {
  for (int64_t i = 0; i < n; ++i) LarsElem<T>(p[i], mu[i], dp[i], c);
}

template <typename T>
void LarsFused(const at::Tensor& p, const at::Tensor& mu, const at::Tensor& dp, const LarsConst<T>& c) {
  ForEach<T, 2>({&p, &mu}, dp, [&](const std::array<T*, 3>& d, int64_t n, const int64_t* st) {
    if (!st) return LarsRun<T>(d[0], d[1], d[2], n, c);
    for (int64_t i = 0; i < n; ++i) LarsElem<T>(d[0][i * st[0]], d[1][i * st[1]], d[2][i * st[2]], c);
  });
}

// larsStep(params, mus, lr, weightDecay, momentum, trustCoefficient) -> updated: boolean[]
// For parameters with more than one dimension: dp = grad + wd * p, scaled by the trust ratio
// q = trust * |p| / |dp| (1 when either norm is 0); 1-D parameters (biases, norm weights) get
// neither. Then mu = momentum * mu + dp; p -= lr * mu.
OP(larsStep, "LL") {
  std::vector<at::Tensor> params = TL(a, 0);
  auto mus = OptTL(a, 1);
  double lr = D(a, 2), wd = D(a, 3), momentum = D(a, 4), trust = D(a, 5);
  size_t n = params.size();
  CheckLengths(n, mus, "mus");
  c10::NoGradGuard noGrad;
  Napi::Array updated = Napi::Array::New(a.Env(), n);
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    updated.Set(static_cast<uint32_t>(i), Napi::Boolean::New(a.Env(), g.defined()));
    if (!g.defined()) continue;
    CheckGrad(i, p, g);
    CheckState("mus", i, p, mus[i]);
    const at::Tensor& mu = *mus[i];
    at::Tensor dp = g;
    at::Tensor q;  // 0-dim, the parameter's dtype; undefined for 1-D parameters
    if (p.dim() > 1) {
      dp = g.add(p, wd);
      at::Tensor pn = at::norm(p);  // torch.norm(p): the Frobenius norm, over all elements
      at::Tensor un = at::norm(dp);
      at::Tensor one = at::ones_like(pn);
      q = at::where(pn > 0., at::where(un > 0, (trust * pn / un), one), one);
    }
    if (Fusable(p, dp)) {
      auto run = [&](auto zero) {
        using T = decltype(zero);
        LarsConst<T> c{T(momentum), T(-lr), q.defined() ? q.item<T>() : T(1)};
        LarsFused<T>(p, mu, dp, c);
      };
      if (p.scalar_type() == at::kFloat) run(0.0f);
      else run(0.0);
      Bump(p);
      Bump(mu);
    } else {
      if (q.defined()) dp = dp.mul(q);
      const_cast<at::Tensor&>(mu).mul_(momentum).add_(dp);
      p.add_(mu, -lr);
    }
  }
  return updated;
}

// ---- gradient clipping and grad bookkeeping ----

// clipGradNorm(params, maxNorm, normType, errorIfNonfinite) -> total norm (0-dim tensor)
// torch.nn.utils.clip_grad_norm_: the norm of all grads together (as one vector), and the grads
// scaled in place by min(1, maxNorm / (total + 1e-6)). Parameters without a grad are ignored.
OP(clipGradNorm, "L") {
  std::vector<at::Tensor> params = TL(a, 0);
  double maxNorm = D(a, 1), normType = D(a, 2);
  bool errorIfNonfinite = B(a, 3);
  c10::NoGradGuard noGrad;
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return Out(a, at::zeros({}, at::kFloat));
  at::Device device = grads[0].device();
  at::Tensor total;
  if (std::isinf(normType) && normType > 0) {
    std::vector<at::Tensor> norms;
    for (const at::Tensor& g : grads) norms.push_back(g.abs().max().to(device));
    total = norms.size() == 1 ? norms[0] : at::max(at::stack(norms));
  } else {
    std::vector<at::Tensor> norms;
    for (const at::Tensor& g : grads) {
      std::vector<int64_t> dims(g.dim());
      for (int64_t d = 0; d < g.dim(); ++d) dims[d] = d;
      norms.push_back(at::norm(g, normType, dims, false).to(device));
    }
    at::Tensor stacked = at::stack(norms);
    total = at::norm(stacked, normType, {0}, false);
  }
  if (errorIfNonfinite && at::logical_or(total.isnan(), total.isinf()).item<bool>())
    throw std::invalid_argument("the total norm of order " + std::to_string(normType) +
                                " of the gradients is non-finite, so it cannot be clipped");
  at::Tensor coef = at::clamp(maxNorm / (total + 1e-6), c10::nullopt, 1.0);
  for (const at::Tensor& g : grads) const_cast<at::Tensor&>(g).mul_(coef.to(g.device()));
  return Out(a, total);
}

// hasGrads(tensors) -> boolean[]: whether each tensor's .grad is defined (no handles made).
OP(hasGrads, "L") {
  std::vector<at::Tensor> ts = TL(a, 0);
  Napi::Array out = Napi::Array::New(a.Env(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i)
    out.Set(static_cast<uint32_t>(i), Napi::Boolean::New(a.Env(), ts[i].grad().defined()));
  return out;
}

// zeroGrads(tensors, setToNone): optimizer.zero_grad() over a list: drops each .grad, or
// zeroes it in place (detaching it from any graph) when setToNone is false.
OP(zeroGrads, "L") {
  std::vector<at::Tensor> ts = TL(a, 0);
  bool setToNone = B(a, 1);
  for (at::Tensor& t : ts) {
    at::Tensor& g = t.mutable_grad();
    if (!g.defined()) continue;
    if (setToNone) {
      g.reset();
    } else {
      if (g.grad_fn()) g.detach_();
      else g.requires_grad_(false);
      g.zero_();
    }
  }
  return a.Env().Undefined();
}

}  // namespace
}  // namespace mm
