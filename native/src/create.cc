// Creation of tensors, conversion between dtypes/devices, and data in and out of JS.
#include <cstring>

#include "common.h"

namespace mm {

// HWC bytes to three planes
MM_VECTOR static void Deinterleave(const uint8_t* __restrict s, uint8_t* __restrict r, uint8_t* __restrict g,
                                   uint8_t* __restrict b, int64_t plane) {
  for (int64_t p = 0; p < plane; p++) {
    r[p] = s[3 * p];
    g[p] = s[3 * p + 1];
    b[p] = s[3 * p + 2];
  }
}

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

// imagesToBatch(images: Uint8Array[], width, height, sizes?, offsets?): HWC RGB images as one
// uint8 [n, 3, height, width] tensor, read and transposed in a single vectorised pass: the data
// loader's batch assembly. Without sizes every image is width x height. With sizes (Int32Array:
// each image's width, height) and offsets (Int32Array: left, top of the window in each image,
// negative or past the edge where it pads), the width x height window is cut out on the way,
// zeros outside the image (torchvision's CenterCrop with padding). One thread: it runs while
// the decode threads keep the cores busy, so a thread started here could wait for a core
// longer than the copy takes.
OP(imagesToBatch, "") {
  if (!a[0].IsArray()) throw Napi::TypeError::New(a.Env(), "imagesToBatch: images must be an array of Uint8Arrays");
  Napi::Array list = a[0].As<Napi::Array>();
  const int64_t w = I(a, 1), h = I(a, 2);
  if (w < 1 || h < 1) throw std::invalid_argument("width and height must be positive");
  const int64_t n = list.Length(), plane = w * h;
  const bool window = !IsNullish(a, 3);
  std::vector<int64_t> sizes, offsets;
  if (window) {
    sizes = IL(a, 3);
    offsets = IL(a, 4);
    if (static_cast<int64_t>(sizes.size()) != 2 * n || static_cast<int64_t>(offsets.size()) != 2 * n)
      throw std::invalid_argument("sizes and offsets must hold 2 numbers per image (" + std::to_string(2 * n) + ")");
  }
  std::vector<const uint8_t*> src(n);
  bool pads = false;
  for (int64_t i = 0; i < n; i++) {
    Napi::Value v = list.Get(static_cast<uint32_t>(i));
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(a.Env(), "imagesToBatch: images[" + std::to_string(i) + "] is not a Uint8Array");
    Napi::Uint8Array img = v.As<Napi::Uint8Array>();
    int64_t iw = window ? sizes[2 * i] : w, ih = window ? sizes[2 * i + 1] : h;
    if (iw < 1 || ih < 1 || static_cast<int64_t>(img.ElementLength()) != 3 * iw * ih)
      throw std::invalid_argument("image " + std::to_string(i) + " holds " + std::to_string(img.ElementLength()) +
                                  " bytes, " + std::to_string(iw) + "x" + std::to_string(ih) + "x3 needs " +
                                  std::to_string(3 * iw * ih));
    if (window) {
      int64_t left = offsets[2 * i], top = offsets[2 * i + 1];
      pads = pads || left < 0 || top < 0 || left + w > iw || top + h > ih;
    }
    src[i] = img.Data();
  }
  at::Tensor out = pads ? at::zeros({n, 3, h, w}, at::TensorOptions().dtype(at::kByte))
                        : at::empty({n, 3, h, w}, at::TensorOptions().dtype(at::kByte));
  uint8_t* dst = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; i++) {
    uint8_t* r = dst + i * 3 * plane;
    if (!window || (sizes[2 * i] == w && sizes[2 * i + 1] == h && offsets[2 * i] == 0 && offsets[2 * i + 1] == 0)) {
      Deinterleave(src[i], r, r + plane, r + 2 * plane, plane);
      continue;
    }
    const int64_t iw = sizes[2 * i], ih = sizes[2 * i + 1], left = offsets[2 * i], top = offsets[2 * i + 1];
    // the columns of the window that fall inside the image
    const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(w, iw - left);
    if (x1 <= x0) continue;
    for (int64_t y = 0; y < h; y++) {
      const int64_t sy = y + top;
      if (sy < 0 || sy >= ih) continue;
      const int64_t o = y * w + x0;
      Deinterleave(src[i] + 3 * (sy * iw + x0 + left), r + o, r + plane + o, r + 2 * plane + o, x1 - x0);
    }
  }
  return Out(a, out);
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
