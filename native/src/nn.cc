// Functional neural-network ops (torch.nn.functional).
#include "common.h"

namespace mm {

OP(linear, "TTT") { return Out(a, at::linear(T(a, 0), T(a, 1), OptT(a, 2))); }
// conv2d(x, w, b?, stride, padding, dilation, groups)
OP(conv2d, "TTT") { return Out(a, at::conv2d(T(a, 0), T(a, 1), OptT(a, 2), IL(a, 3), IL(a, 4), IL(a, 5), I(a, 6))); }
// layerNorm(x, normalizedShape, w?, b?, eps)
// A bfloat16/float16 input (an autocast matmul's output) with float32 affine parameters or
// statistics is normalised in float32, as autocast's fp32 ops do on CUDA (libtorch 1.13's CPU
// kernels take no mixed dtypes): the statistics are float32 and so is the output.
static at::Tensor UpcastFor(const at::Tensor& x, const c10::optional<at::Tensor>& p) {
  if (p && p->defined() && x.scalar_type() != p->scalar_type() && (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf) &&
      p->scalar_type() == at::kFloat)
    return x.to(at::kFloat);
  return x;
}
OP(layerNorm, "T.TT") {
  c10::optional<at::Tensor> w = OptT(a, 2);
  return Out(a, at::layer_norm(UpcastFor(T(a, 0), w ? w : OptT(a, 3)), IL(a, 1), w, OptT(a, 3), D(a, 4)));
}
// groupNorm(x, groups, w?, b?, eps)
OP(groupNorm, "T.TT") { return Out(a, at::group_norm(T(a, 0), I(a, 1), OptT(a, 2), OptT(a, 3), D(a, 4))); }
// batchNorm(x, w?, b?, runningMean?, runningVar?, training, momentum, eps): updates the running
// statistics in place when training, like F.batch_norm.
OP(batchNorm, "TTTTT") {
  c10::optional<at::Tensor> w = OptT(a, 1);
  at::Tensor x = UpcastFor(T(a, 0), w ? w : OptT(a, 3));
  return Out(a, at::batch_norm(x, w, OptT(a, 2), OptT(a, 3), OptT(a, 4), B(a, 5), D(a, 6), D(a, 7),
                               /*cudnn_enabled=*/true));
}
OP(softmax, "T") { return Out(a, at::softmax(T(a, 0), I(a, 1), OptDT(a, 2))); }
OP(logSoftmax, "T") { return Out(a, at::log_softmax(T(a, 0), I(a, 1), OptDT(a, 2))); }

static int64_t Reduction(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return at::Reduction::Mean;
  std::string r = Str(a, i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  throw std::invalid_argument("reduction must be 'mean', 'sum' or 'none', got '" + r + "'");
}
// crossEntropy(logits, target, weight?, reduction, ignoreIndex, labelSmoothing): target holds
// class indices (int64) or class probabilities (float, same shape as logits).
OP(crossEntropy, "TTT") {
  return Out(a, at::cross_entropy_loss(T(a, 0), T(a, 1), OptT(a, 2), Reduction(a, 3),
                                       IsNullish(a, 4) ? -100 : I(a, 4), IsNullish(a, 5) ? 0.0 : D(a, 5)));
}
OP(nllLoss, "TTT") {
  return Out(a, at::nll_loss(T(a, 0), T(a, 1), OptT(a, 2), Reduction(a, 3), IsNullish(a, 4) ? -100 : I(a, 4)));
}
OP(mseLoss, "TT") { return Out(a, at::mse_loss(T(a, 0), T(a, 1), Reduction(a, 2))); }
OP(smoothL1Loss, "TT") { return Out(a, at::smooth_l1_loss(T(a, 0), T(a, 1), Reduction(a, 2), D(a, 3))); }
OP(binaryCrossEntropyWithLogits, "TTTT") {
  return Out(a, at::binary_cross_entropy_with_logits(T(a, 0), T(a, 1), OptT(a, 2), OptT(a, 3), Reduction(a, 4)));
}
// normalize(x, p, dim, eps): x / max(||x||_p, eps) along dim, as F.normalize.
OP(normalize, "T") {
  at::Tensor& x = T(a, 0);
  std::vector<int64_t> dim = {I(a, 2)};
  at::Tensor n = at::linalg_vector_norm(x, at::Scalar(D(a, 1)), dim, /*keepdim=*/true).clamp_min(D(a, 3));
  return Out(a, x / n.expand_as(x));
}
OP(cosineSimilarity, "TT") { return Out(a, at::cosine_similarity(T(a, 0), T(a, 1), I(a, 2), D(a, 3))); }
OP(dropout, "T") { return Out(a, at::dropout(T(a, 0), D(a, 1), B(a, 2))); }
OP(oneHot, "T") { return Out(a, at::one_hot(T(a, 0), IsNullish(a, 1) ? -1 : I(a, 1))); }

// interpolate(x, size?, scaleFactor?, mode, alignCorners, antialias) on NCHW input.
OP(interpolate, "T") {
  at::Tensor& x = T(a, 0);
  std::string mode = Str(a, 3);
  bool align = B(a, 4);
  bool aa = B(a, 5);
  c10::OptionalIntArrayRef size;
  std::vector<int64_t> sz;
  c10::optional<at::ArrayRef<double>> scales;
  std::vector<double> sc;
  if (!IsNullish(a, 1)) {
    sz = IL(a, 1);
    if (sz.size() == 1) sz.push_back(sz[0]);
    size = sz;
  } else {
    if (a[2].IsNumber()) {
      sc = {D(a, 2), D(a, 2)};
    } else {
      Napi::Array arr = a[2].As<Napi::Array>();
      for (uint32_t k = 0; k < arr.Length(); ++k) sc.push_back(arr.Get(k).As<Napi::Number>().DoubleValue());
    }
    scales = at::ArrayRef<double>(sc);
  }
  if (mode == "bilinear")
    return Out(a, aa ? at::_upsample_bilinear2d_aa(x, size, align, scales) : at::upsample_bilinear2d(x, size, align, scales));
  if (mode == "bicubic")
    return Out(a, aa ? at::_upsample_bicubic2d_aa(x, size, align, scales) : at::upsample_bicubic2d(x, size, align, scales));
  if (mode == "nearest") return Out(a, at::upsample_nearest2d(x, size, scales));
  throw std::invalid_argument("mode must be 'bilinear', 'bicubic' or 'nearest', got '" + mode + "'");
}
// pad(x, pads, mode, value): pads as F.pad (last dimension first).
OP(pad, "T") { return Out(a, at::pad(T(a, 0), IL(a, 1), Str(a, 2), OptD(a, 3))); }
// avgPool2d(x, kernel, stride, padding, ceilMode, countIncludePad)
OP(avgPool2d, "T") { return Out(a, at::avg_pool2d(T(a, 0), IL(a, 1), IL(a, 2), IL(a, 3), B(a, 4), B(a, 5))); }
OP(maxPool2d, "T") { return Out(a, at::max_pool2d(T(a, 0), IL(a, 1), IL(a, 2), IL(a, 3), IL(a, 4), B(a, 5))); }
OP(adaptiveAvgPool2d, "T") { return Out(a, at::adaptive_avg_pool2d(T(a, 0), IL(a, 1))); }

// scaledDotProductAttention(q, k, v, mask?, dropoutP, isCausal): libtorch's fused kernel when
// the version has one (2.x), else the same math composed from matmul and softmax.
OP(scaledDotProductAttention, "TTTT") {
  at::Tensor &q = T(a, 0), &k = T(a, 1), &v = T(a, 2);
  c10::optional<at::Tensor> mask = OptT(a, 3);
  double p = IsNullish(a, 4) ? 0.0 : D(a, 4);
  bool causal = B(a, 5);
#if TORCH_VERSION_MAJOR >= 2
  return Out(a, at::scaled_dot_product_attention(q, k, v, mask, p, causal));
#else
  at::Tensor attn = at::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  if (causal) {
    at::Tensor keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    attn = attn.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask) {
    if (mask->scalar_type() == at::kBool)
      attn = attn.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else
      attn = attn + *mask;
  }
  attn = at::softmax(attn, -1);
  if (p > 0) attn = at::dropout(attn, p, true);
  return Out(a, at::matmul(attn, v));
#endif
}


}  // namespace mm
