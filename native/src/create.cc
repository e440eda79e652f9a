// Creation of tensors, conversion between dtypes/devices, and data in and out of JS.
#include <cstring>

#include "common.h"

namespace mm {

// fromBuffer(typedArray, dtype, shape, device?): copies the bytes into a new tensor.
OP(fromBuffer, "") {
  if (!a[0].IsTypedArray()) throw Napi::TypeError::New(a.Env(), "fromBuffer: argument 0: expected a TypedArray");
  Napi::TypedArray ta = a[0].As<Napi::TypedArray>();
  at::ScalarType dt = DT(a, 1);
  std::vector<int64_t> shape = IL(a, 2);
  int64_t numel = 1;
  for (int64_t s : shape) numel *= s;
  size_t bytes = ta.ByteLength();
  if (static_cast<int64_t>(bytes) != numel * static_cast<int64_t>(c10::elementSize(dt)))
    throw std::invalid_argument("buffer holds " + std::to_string(bytes) + " bytes but shape needs " +
                                std::to_string(numel) + " elements of " + DtypeName(dt));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dt));
  uint8_t* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (bytes) std::memcpy(t.data_ptr(), src, bytes);
  if (!IsNullish(a, 3)) {
    at::Device dev = Dev(a, 3);
    if (dev != t.device()) t = t.to(dev);
  }
  return Out(a, t);
}

// toBuffer(t): a copy of the elements (row-major, on the CPU) as an ArrayBuffer.
OP(toBuffer, "T") {
  at::Tensor t = T(a, 0);
  if (!IsNullish(a, 1)) t = t.to(DT(a, 1));
  t = t.to(at::kCPU).contiguous();
  size_t bytes = t.numel() * t.element_size();
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(a.Env(), bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  return buf;
}

OP(item, "T") {
  at::Tensor& t = T(a, 0);
  if (t.numel() != 1)
    throw std::invalid_argument("a Tensor with " + std::to_string(t.numel()) +
                                " elements cannot be converted to a number");
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(a.Env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(a.Env(), static_cast<double>(s.toLong()));
  return Napi::Number::New(a.Env(), s.toDouble());
}

OP(empty, "") { return Out(a, at::empty(IL(a, 0), Opts(a, 1, 2))); }
OP(zeros, "") { return Out(a, at::zeros(IL(a, 0), Opts(a, 1, 2))); }
OP(ones, "") { return Out(a, at::ones(IL(a, 0), Opts(a, 1, 2))); }
OP(full, "") { return Out(a, at::full(IL(a, 0), S(a, 1), Opts(a, 2, 3))); }
// arange infers int64 from integral bounds unless a dtype is given, as torch.arange does.
OP(arange, "") {
  at::Scalar start = S(a, 0), end = S(a, 1), step = S(a, 2);
  bool integral = start.isIntegral(false) && end.isIntegral(false) && step.isIntegral(false);
  at::TensorOptions o = at::TensorOptions().dtype(IsNullish(a, 3) ? (integral ? at::kLong : at::kFloat) : DT(a, 3));
  if (!IsNullish(a, 4)) o = o.device(Dev(a, 4));
  return Out(a, at::arange(start, end, step, o));
}
OP(linspace, "") { return Out(a, at::linspace(S(a, 0), S(a, 1), I(a, 2), Opts(a, 3, 4))); }
OP(eye, "") { return Out(a, at::eye(I(a, 0), I(a, 1), Opts(a, 2, 3))); }
OP(rand, "") { return Out(a, at::rand(IL(a, 0), Opts(a, 1, 2))); }
OP(randn, "") { return Out(a, at::randn(IL(a, 0), Opts(a, 1, 2))); }
OP(randint, "") {
  at::TensorOptions o = at::TensorOptions().dtype(IsNullish(a, 3) ? at::kLong : DT(a, 3));
  if (!IsNullish(a, 4)) o = o.device(Dev(a, 4));
  return Out(a, at::randint(I(a, 0), I(a, 1), IL(a, 2), o));
}
OP(randperm, "") {
  at::TensorOptions o = at::TensorOptions().dtype(IsNullish(a, 1) ? at::kLong : DT(a, 1));
  if (!IsNullish(a, 2)) o = o.device(Dev(a, 2));
  return Out(a, at::randperm(I(a, 0), o));
}

// *Like(t, dtype?, ...): same shape and device as t, dtype of t unless given.
static at::TensorOptions LikeOpts(const Napi::CallbackInfo& a, size_t dtypeArg) {
  at::TensorOptions o = T(a, 0).options();
  if (!IsNullish(a, dtypeArg)) o = o.dtype(DT(a, dtypeArg));
  return o;
}
OP(emptyLike, "T") { return Out(a, at::empty_like(T(a, 0), LikeOpts(a, 1))); }
OP(zerosLike, "T") { return Out(a, at::zeros_like(T(a, 0), LikeOpts(a, 1))); }
OP(onesLike, "T") { return Out(a, at::ones_like(T(a, 0), LikeOpts(a, 1))); }
OP(fullLike, "T") { return Out(a, at::full_like(T(a, 0), S(a, 1), LikeOpts(a, 2))); }
OP(randLike, "T") { return Out(a, at::rand_like(T(a, 0), LikeOpts(a, 1))); }
OP(randnLike, "T") { return Out(a, at::randn_like(T(a, 0), LikeOpts(a, 1))); }
OP(randintLike, "T") { return Out(a, at::randint_like(T(a, 0), I(a, 1), I(a, 2), LikeOpts(a, 3))); }

// to(t, dtype?, device?, copy?, nonBlocking?): nonBlocking lets a copy between pinned host
// memory and a GPU run asynchronously (otherwise libtorch ignores it).
OP(to, "T") {
  at::Tensor& t = T(a, 0);
  at::ScalarType dt = IsNullish(a, 1) ? t.scalar_type() : DT(a, 1);
  at::Device dev = IsNullish(a, 2) ? t.device() : Dev(a, 2);
  bool nonBlocking = !IsNullish(a, 4) && B(a, 4);
  return Out(a, t.to(dev, dt, nonBlocking, /*copy=*/B(a, 3)));
}
OP(clone, "T") { return Out(a, T(a, 0).clone()); }
OP(contiguous, "T") { return Out(a, T(a, 0).contiguous()); }


}  // namespace mm
