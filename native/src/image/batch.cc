// The data loader's batch assembly: HWC RGB images (as decoded) into one uint8 NCHW tensor.
#include "../common.h"

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

// imagesToBatch(images: Uint8Array[], width, height): width x height HWC RGB images as one uint8
// [n, 3, height, width] tensor, read and transposed in a single vectorised pass (not a tensor
// and a permuted copy per image). One thread: it runs while the decode threads keep the cores
// busy, so a thread started here could wait for a core longer than the copy takes.
IMAGE_OP(imagesToBatch, "") {
  if (!a[0].IsArray()) throw Napi::TypeError::New(a.Env(), "imagesToBatch: images must be an array of Uint8Arrays");
  Napi::Array list = a[0].As<Napi::Array>();
  const int64_t w = I(a, 1), h = I(a, 2);
  if (w < 1 || h < 1) throw std::invalid_argument("width and height must be positive");
  const int64_t n = list.Length(), plane = w * h;
  std::vector<const uint8_t*> src(n);
  for (int64_t i = 0; i < n; i++) {
    Napi::Value v = list.Get(static_cast<uint32_t>(i));
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(a.Env(), "imagesToBatch: images[" + std::to_string(i) + "] is not a Uint8Array");
    Napi::Uint8Array img = v.As<Napi::Uint8Array>();
    if (static_cast<int64_t>(img.ElementLength()) != 3 * plane)
      throw std::invalid_argument("image " + std::to_string(i) + " holds " + std::to_string(img.ElementLength()) +
                                  " bytes, " + std::to_string(w) + "x" + std::to_string(h) + "x3 needs " +
                                  std::to_string(3 * plane));
    src[i] = img.Data();
  }
  at::Tensor out = at::empty({n, 3, h, w}, at::TensorOptions().dtype(at::kByte));
  uint8_t* dst = out.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; i++) {
    uint8_t* r = dst + i * 3 * plane;
    Deinterleave(src[i], r, r + plane, r + 2 * plane, plane);
  }
  return Out(a, out);
}

}  // namespace mm
