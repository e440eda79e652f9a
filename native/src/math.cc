// Pointwise math, comparisons, reductions, linear algebra, sorting and in-place updates.
#include "common.h"

namespace mm {

// ---- binary ops with broadcasting. Tensor-tensor ops take two slots; the `S` variants
// take a JS number (or boolean) as the second operand ----
#define BINARY(name, fn)                                    \
  OP(name, "TT") { return Out(a, at::fn(T(a, 0), T(a, 1))); } \
  OP(name##S, "T") { return Out(a, at::fn(T(a, 0), S(a, 1))); }

static at::Scalar Alpha(const Napi::CallbackInfo& a, size_t i) { return IsNullish(a, i) ? at::Scalar(1) : S(a, i); }
OP(add, "TT") { return Out(a, at::add(T(a, 0), T(a, 1), Alpha(a, 2))); }
OP(addS, "T") { return Out(a, at::add(T(a, 0), S(a, 1), Alpha(a, 2))); }
OP(sub, "TT") { return Out(a, at::sub(T(a, 0), T(a, 1), Alpha(a, 2))); }
OP(subS, "T") { return Out(a, at::sub(T(a, 0), S(a, 1), Alpha(a, 2))); }
// rsubS(t, s) = s - t
OP(rsubS, "T") { return Out(a, at::rsub(T(a, 0), S(a, 1))); }
BINARY(mul, mul)
static c10::optional<c10::string_view> RoundingMode(const Napi::CallbackInfo& a, size_t i, std::string& keep) {
  if (IsNullish(a, i)) return c10::nullopt;
  keep = Str(a, i);
  return c10::string_view(keep);
}
OP(div, "TT") {
  std::string m;
  return Out(a, at::div(T(a, 0), T(a, 1), RoundingMode(a, 2, m)));
}
OP(divS, "T") {
  std::string m;
  return Out(a, at::div(T(a, 0), S(a, 1), RoundingMode(a, 2, m)));
}
BINARY(pow, pow)
// rpowS(t, s) = s ** t
OP(rpowS, "T") { return Out(a, at::pow(S(a, 1), T(a, 0))); }
BINARY(remainder, remainder)
BINARY(eq, eq)
BINARY(ne, ne)
BINARY(lt, lt)
BINARY(le, le)
BINARY(gt, gt)
BINARY(ge, ge)
OP(maximum, "TT") { return Out(a, at::maximum(T(a, 0), T(a, 1))); }
OP(minimum, "TT") { return Out(a, at::minimum(T(a, 0), T(a, 1))); }
OP(logicalAnd, "TT") { return Out(a, at::logical_and(T(a, 0), T(a, 1))); }
OP(logicalOr, "TT") { return Out(a, at::logical_or(T(a, 0), T(a, 1))); }
OP(logicalNot, "T") { return Out(a, at::logical_not(T(a, 0))); }
OP(atan2, "TT") { return Out(a, at::atan2(T(a, 0), T(a, 1))); }
OP(allclose, "TT") {
  return Napi::Boolean::New(a.Env(), at::allclose(T(a, 0), T(a, 1), D(a, 2), D(a, 3), B(a, 4)));
}
OP(equal, "TT") { return Napi::Boolean::New(a.Env(), at::equal(T(a, 0), T(a, 1))); }

// ---- unary ops ----
#define UNARY(name, fn) \
  OP(name, "T") { return Out(a, at::fn(T(a, 0))); }
UNARY(neg, neg)
UNARY(sqrt, sqrt)
UNARY(rsqrt, rsqrt)
UNARY(exp, exp)
UNARY(log, log)
UNARY(log1p, log1p)
UNARY(expm1, expm1)
UNARY(abs, abs)
UNARY(sign, sign)
UNARY(floor, floor)
UNARY(ceil, ceil)
UNARY(trunc, trunc)
UNARY(erf, erf)
UNARY(erfinv, erfinv)
UNARY(tanh, tanh)
UNARY(sigmoid, sigmoid)
UNARY(relu, relu)
UNARY(silu, silu)
UNARY(sin, sin)
UNARY(cos, cos)
UNARY(acos, acos)
UNARY(reciprocal, reciprocal)
UNARY(square, square)
UNARY(isnan, isnan)
UNARY(isfinite, isfinite)
OP(round, "T") {
  if (IsNullish(a, 1)) return Out(a, at::round(T(a, 0)));
  return Out(a, at::round(T(a, 0), I(a, 1)));
}
// gelu(t, approximate: 'none' | 'tanh')
OP(gelu, "T") { return Out(a, at::gelu(T(a, 0), IsNullish(a, 1) ? "none" : Str(a, 1))); }
OP(leakyRelu, "T") { return Out(a, at::leaky_relu(T(a, 0), S(a, 1))); }
OP(softplus, "T") { return Out(a, at::softplus(T(a, 0), S(a, 1), S(a, 2))); }

// clampS(t, min?, max?) with number bounds; clamp(t, min?, max?) with tensor bounds (null: none).
static c10::optional<at::Scalar> OptS(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return c10::nullopt;
  return S(a, i);
}
OP(clampS, "T") { return Out(a, at::clamp(T(a, 0), OptS(a, 1), OptS(a, 2))); }
OP(clamp, "TTT") { return Out(a, at::clamp(T(a, 0), OptT(a, 1), OptT(a, 2))); }
OP(clampS_, "T") {
  T(a, 0).clamp_(OptS(a, 1), OptS(a, 2));
  return a[0];
}

// ---- reductions: dims is null (all), a number or an array ----
static bool AllDims(const Napi::CallbackInfo& a, size_t i) { return IsNullish(a, i); }

OP(sum, "T") {
  if (AllDims(a, 1)) return Out(a, at::sum(T(a, 0), OptDT(a, 3)));
  return Out(a, at::sum(T(a, 0), IL(a, 1), B(a, 2), OptDT(a, 3)));
}
OP(mean, "T") {
  if (AllDims(a, 1)) return Out(a, at::mean(T(a, 0), OptDT(a, 3)));
  return Out(a, at::mean(T(a, 0), IL(a, 1), B(a, 2), OptDT(a, 3)));
}
OP(prod, "T") {
  if (AllDims(a, 1)) return Out(a, at::prod(T(a, 0), OptDT(a, 3)));
  return Out(a, at::prod(T(a, 0), I(a, 1), B(a, 2), OptDT(a, 3)));
}
// var/std(t, dims?, correction, keepdim)
static at::Tensor VarStd(const Napi::CallbackInfo& a, bool isStd) {
  c10::OptionalIntArrayRef dims;
  std::vector<int64_t> d;
  if (!AllDims(a, 1)) {
    d = IL(a, 1);
    dims = d;
  }
#if TORCH_VERSION_MAJOR >= 2
  c10::optional<at::Scalar> corr = at::Scalar(IsNullish(a, 2) ? int64_t(1) : I(a, 2));
#else
  c10::optional<int64_t> corr = IsNullish(a, 2) ? int64_t(1) : I(a, 2);
#endif
  return isStd ? at::std(T(a, 0), dims, corr, B(a, 3)) : at::var(T(a, 0), dims, corr, B(a, 3));
}
OP(var, "") { return Out(a, VarStd(a, false)); }
OP(std, "") { return Out(a, VarStd(a, true)); }
// max/min(t) -> tensor; max/min(t, dim, keepdim) -> [values, indices]
OP(max, "T") {
  if (IsNullish(a, 1)) return Out(a, at::max(T(a, 0)));
  return Pair(a, at::max(T(a, 0), I(a, 1), B(a, 2)));
}
OP(min, "T") {
  if (IsNullish(a, 1)) return Out(a, at::min(T(a, 0)));
  return Pair(a, at::min(T(a, 0), I(a, 1), B(a, 2)));
}
OP(amax, "T") { return Out(a, at::amax(T(a, 0), IL(a, 1), B(a, 2))); }
OP(amin, "T") { return Out(a, at::amin(T(a, 0), IL(a, 1), B(a, 2))); }
OP(argmax, "T") { return Out(a, at::argmax(T(a, 0), OptI(a, 1), B(a, 2))); }
OP(argmin, "T") { return Out(a, at::argmin(T(a, 0), OptI(a, 1), B(a, 2))); }
// norm(t, p, dims?, keepdim): the vector p-norm over dims (all elements when null).
OP(norm, "T") {
  at::Scalar p = IsNullish(a, 1) ? at::Scalar(2.0) : at::Scalar(D(a, 1));
  if (AllDims(a, 2)) return Out(a, at::linalg_vector_norm(T(a, 0), p, c10::nullopt, B(a, 3)));
  std::vector<int64_t> d = IL(a, 2);
  return Out(a, at::linalg_vector_norm(T(a, 0), p, d, B(a, 3)));
}
OP(logsumexp, "T") { return Out(a, at::logsumexp(T(a, 0), IL(a, 1), B(a, 2))); }
OP(cumsum, "T") { return Out(a, at::cumsum(T(a, 0), I(a, 1), OptDT(a, 2))); }
OP(all, "T") {
  if (IsNullish(a, 1)) return Out(a, at::all(T(a, 0)));
  return Out(a, at::all(T(a, 0), I(a, 1), B(a, 2)));
}
OP(any, "T") {
  if (IsNullish(a, 1)) return Out(a, at::any(T(a, 0)));
  return Out(a, at::any(T(a, 0), I(a, 1), B(a, 2)));
}

// ---- linear algebra ----
OP(matmul, "TT") { return Out(a, at::matmul(T(a, 0), T(a, 1))); }
OP(mm, "TT") { return Out(a, at::mm(T(a, 0), T(a, 1))); }
OP(bmm, "TT") { return Out(a, at::bmm(T(a, 0), T(a, 1))); }
OP(addmm, "TTT") {
  at::Scalar beta = IsNullish(a, 3) ? at::Scalar(1) : S(a, 3);
  at::Scalar alpha = IsNullish(a, 4) ? at::Scalar(1) : S(a, 4);
  return Out(a, at::addmm(T(a, 0), T(a, 1), T(a, 2), beta, alpha));
}
OP(einsum, ".L") { return Out(a, at::einsum(Str(a, 0), TL(a, 1))); }
OP(outer, "TT") { return Out(a, at::outer(T(a, 0), T(a, 1))); }

// ---- sorting ----
OP(sort, "T") { return Pair(a, at::sort(T(a, 0), I(a, 1), B(a, 2))); }
OP(argsort, "T") { return Out(a, at::argsort(T(a, 0), I(a, 1), B(a, 2))); }
OP(topk, "T") { return Pair(a, at::topk(T(a, 0), I(a, 1), I(a, 2), B(a, 3), B(a, 4))); }

// ---- in-place updates (return the same slot) ----
#define INPLACE(name, sig, body) \
  OP(name, sig) {                \
    body;                   \
    return a[0];            \
  }
INPLACE(add_, "TT", T(a, 0).add_(T(a, 1), Alpha(a, 2)))
INPLACE(addS_, "T", T(a, 0).add_(S(a, 1), Alpha(a, 2)))
INPLACE(sub_, "TT", T(a, 0).sub_(T(a, 1), Alpha(a, 2)))
INPLACE(subS_, "T", T(a, 0).sub_(S(a, 1), Alpha(a, 2)))
INPLACE(mul_, "TT", T(a, 0).mul_(T(a, 1)))
INPLACE(mulS_, "T", T(a, 0).mul_(S(a, 1)))
INPLACE(div_, "TT", T(a, 0).div_(T(a, 1)))
INPLACE(divS_, "T", T(a, 0).div_(S(a, 1)))
INPLACE(copy_, "TT", T(a, 0).copy_(T(a, 1)))
INPLACE(zero_, "T", T(a, 0).zero_())
INPLACE(fill_, "T", T(a, 0).fill_(S(a, 1)))
INPLACE(lerp_, "TTT", T(a, 0).lerp_(T(a, 1), T(a, 2)))
INPLACE(lerpS_, "TT", T(a, 0).lerp_(T(a, 1), S(a, 2)))
INPLACE(addcmul_, "TTT", T(a, 0).addcmul_(T(a, 1), T(a, 2), Alpha(a, 3)))
INPLACE(addcdiv_, "TTT", T(a, 0).addcdiv_(T(a, 1), T(a, 2), Alpha(a, 3)))
INPLACE(sqrt_, "T", T(a, 0).sqrt_())
INPLACE(normal_, "T", T(a, 0).normal_(D(a, 1), D(a, 2)))
INPLACE(uniform_, "T", T(a, 0).uniform_(D(a, 1), D(a, 2)))


}  // namespace mm
