// ColorJitter fused into one pass per op and image on CPU (src/data/transforms/color.ts uses
// it, through src/data/native/kernels.ts, for float32 batches on the CPU; other devices take the composed tensor ops). As composed
// ops the hue rotation alone is ~40 full-batch kernels (RGB -> HSV -> RGB), which made colour
// jitter most of the pre-training augmentations' cost. The arithmetic is torchvision's
// functional_tensor (0.14) in float32, step by step in the same order, so the results equal the
// composed ops' bit for bit, except the contrast mean (summed in double here).
#include "../common.h"

#include <cstdint>
#include <cstring>

namespace mm {
namespace {

// The per-plane kernels are MM_VECTOR (O3 with an AVX2 clone, common.h) and written without
// branches (selects on bits), so that they vectorise; AVX2 brings no FMA, so every step rounds
// as torchvision's separate float32 ops do.

MM_INLINE float Max(float a, float b) { return a < b ? b : a; }  // std::max
MM_INLINE float Min(float a, float b) { return b < a ? b : a; }  // std::min
MM_INLINE float Clamp01(float v) { return Min(Max(v, 0.f), 1.f); }
MM_INLINE float Luma(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

// c ? a : b on the bits
MM_INLINE float Pick(bool c, float a, float b) {
  uint32_t ai, bi;
  std::memcpy(&ai, &a, 4);
  std::memcpy(&bi, &b, 4);
  uint32_t m = 0u - static_cast<uint32_t>(c);
  uint32_t r = (ai & m) | (bi & ~m);
  float out;
  std::memcpy(&out, &r, 4);
  return out;
}

// clamp(x * f + add, 0, 1) per channel (brightness: add 0; contrast: the mean's share)
MM_VECTOR void ScalePlane(float* __restrict X, int64_t n, float f, float add) {
  for (int64_t k = 0; k < n; k++) X[k] = Clamp01(X[k] * f + add);
}

MM_VECTOR double LumaSum(const float* __restrict R, const float* __restrict G, const float* __restrict B, int64_t n) {
  double sum = 0;
  for (int64_t k = 0; k < n; k++) sum += Luma(R[k], G[k], B[k]);
  return sum;
}

// saturation: blend with each pixel's luma
MM_VECTOR void SaturatePlane(float* __restrict R, float* __restrict G, float* __restrict B, int64_t n, float f, float c) {
  for (int64_t k = 0; k < n; k++) {
    float l = Luma(R[k], G[k], B[k]) * c;
    R[k] = Clamp01(R[k] * f + l);
    G[k] = Clamp01(G[k] * f + l);
    B[k] = Clamp01(B[k] * f + l);
  }
}

// torchvision's _rgb2hsv, hue shift (h + shift) % 1, _hsv2rgb; the selects pick what its masked
// sums pick
MM_VECTOR void HuePlane(float* __restrict R, float* __restrict G, float* __restrict B, int64_t n, float shift) {
  for (int64_t k = 0; k < n; k++) {
    float r = R[k], g = G[k], b = B[k];
    float maxc = Max(r, Max(g, b));
    float minc = Min(r, Min(g, b));
    bool eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / Pick(eqc, 1.f, maxc);
    float crd = Pick(eqc, 1.f, cr);
    float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float h = Pick(maxc == r, bc - gc, Pick(maxc == g, (2.f + rc) - bc, (4.f + gc) - rc));
    // torch.fmod(h / 6 + 1, 1): the argument lies in [5/6, 2), where that is h - 1 above 1 (exact)
    h = h / 6.f + 1.f;
    h = Pick(h >= 1.f, h - 1.f, h);
    // torch.remainder(h + shift, 1) for |shift| <= 0.5
    h = h + shift;
    h = Pick(h >= 1.f, h - 1.f, Pick(h < 0.f, h + 1.f, h));
    float v = maxc;
    float h6 = h * 6.f;
    int i = static_cast<int>(h6);  // floor, as h6 >= 0
    float f = h6 - static_cast<float>(i);
    i = i == 6 ? 0 : i;
    float p = Clamp01(v * (1.f - s));
    float q = Clamp01(v * (1.f - s * f));
    float t = Clamp01(v * (1.f - s * (1.f - f)));
    // sectors 0..5: r (v q p p t v), g (t v v q p p), b (p p t v v q)
    R[k] = Pick(i == 0 || i == 5, v, Pick(i == 1, q, Pick(i == 2 || i == 3, p, t)));
    G[k] = Pick(i == 0, t, Pick(i == 1 || i == 2, v, Pick(i == 3, q, p)));
    B[k] = Pick(i == 0 || i == 1, p, Pick(i == 2, t, Pick(i == 3 || i == 4, v, q)));
  }
}

}  // namespace

// colorJitterCpu(x float32 [n, 3, h, w], order int64 [n, 4], ratio float32 [n, 4],
// complement float32 [n, 4]) -> new tensor. order[i] lists image i's ops in the order applied
// (0 brightness, 1 contrast, 2 saturation, 3 hue; -1: none); ratio[i][op] is the op's factor
// (the hue shift for op 3) and complement[i][op] = 1 - factor computed in double on the host.
IMAGE_OP(colorJitterCpu, "TTTT") {
  const at::Tensor& x = T(a, 0);
  if (x.scalar_type() != at::kFloat || !x.device().is_cpu() || x.dim() != 4 || x.size(1) != 3)
    throw std::invalid_argument("x must be a float32 CPU tensor [n, 3, h, w], got " + Describe(a, 0));
  // the planes are rewritten in place through raw pointers, outside autograd
  if (x.requires_grad()) throw std::invalid_argument("x requires grad: colorJitterCpu is an augmentation op, detach it");
  const int64_t n = x.size(0);
  at::Tensor order = T(a, 1).to(at::kLong).contiguous();
  at::Tensor ratio = T(a, 2).to(at::kFloat).contiguous();
  at::Tensor comp = T(a, 3).to(at::kFloat).contiguous();
  for (const at::Tensor* t : {&order, &ratio, &comp})
    if (t->dim() != 2 || t->size(0) != n || t->size(1) != 4)
      throw std::invalid_argument("order, ratio and complement must be [n, 4] with n = " + std::to_string(n));
  at::Tensor out = x.contiguous().clone();
  const int64_t plane = x.size(2) * x.size(3);
  float* base = out.data_ptr<float>();
  const int64_t* ord = order.data_ptr<int64_t>();
  const float* rat = ratio.data_ptr<float>();
  const float* com = comp.data_ptr<float>();
  ParallelRanges(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      float* R = base + i * 3 * plane;
      float* G = R + plane;
      float* B = G + plane;
      for (int step = 0; step < 4; step++) {
        int64_t op = ord[4 * i + step];
        if (op < 0) continue;
        float f = rat[4 * i + op], c = com[4 * i + op];
        if (op == 0) {  // brightness: blend with black
          for (float* X : {R, G, B}) ScalePlane(X, plane, f, 0.f);
        } else if (op == 1) {  // contrast: blend with the mean luma
          float m = static_cast<float>(LumaSum(R, G, B, plane) / static_cast<double>(plane)) * c;
          for (float* X : {R, G, B}) ScalePlane(X, plane, f, m);
        } else if (op == 2) {  // saturation: blend with the pixel's luma
          SaturatePlane(R, G, B, plane, f, c);
        } else {
          HuePlane(R, G, B, plane, f);
        }
      }
    }
  });
  return Out(a, out);
}

}  // namespace mm
