// Per-image resized crops of a batch (src/data/transforms/geometry.ts' resizedCrop on the CPU,
// through src/data/native/kernels.ts): torchvision's resized_crop with a box per image, in one call.
#include "../common.h"

namespace mm {

// resizedCrops(x [n, c, h, w] float, boxes [top, left, height, width] * n, outH, outW, mode,
// antialias): image i's box resized to outH x outW by F.interpolate (align_corners false),
// all images in one call, the images split over at::get_num_threads() threads (the kernels are
// deterministic, so the results equal separate F.interpolate calls).
IMAGE_OP(resizedCrops, "T") {
  const at::Tensor& x = T(a, 0);
  std::vector<int64_t> boxes = IL(a, 1);
  int64_t oh = I(a, 2), ow = I(a, 3);
  std::string mode = Str(a, 4);
  bool aa = B(a, 5);
  if (x.dim() != 4) throw std::invalid_argument("x must be [n, c, h, w], got " + Describe(a, 0));
  // the per-image work runs on threads of its own, outside autograd
  if (x.requires_grad()) throw std::invalid_argument("x requires grad: resizedCrops is an augmentation op, detach it");
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  if (static_cast<int64_t>(boxes.size()) != 4 * n)
    throw std::invalid_argument("boxes must hold 4 numbers per image (" + std::to_string(4 * n) + "), got " +
                                std::to_string(boxes.size()));
  if (mode != "bilinear" && mode != "bicubic" && mode != "nearest")
    throw std::invalid_argument("mode must be 'bilinear', 'bicubic' or 'nearest', got '" + mode + "'");
  for (int64_t i = 0; i < n; i++) {
    const int64_t* b = &boxes[4 * i];
    if (b[0] < 0 || b[1] < 0 || b[2] < 1 || b[3] < 1 || b[0] + b[2] > h || b[1] + b[3] > w)
      throw std::invalid_argument("box " + std::to_string(i) + " is not inside " + std::to_string(h) + "x" +
                                  std::to_string(w));
  }
  at::Tensor out = at::empty({n, x.size(1), oh, ow}, x.options());
  std::vector<int64_t> size = {oh, ow};
  ParallelRanges(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const int64_t* b = &boxes[4 * i];
      at::Tensor c = x.narrow(0, i, 1).narrow(2, b[0], b[2]).narrow(3, b[1], b[3]);
      at::Tensor r;
      at::IntArrayRef sz(size);
      c10::optional<double> none;
      if (b[2] == oh && b[3] == ow) r = c;
      else if (mode == "bilinear")
        r = aa ? at::_upsample_bilinear2d_aa(c, sz, false, none, none) : at::upsample_bilinear2d(c, sz, false, none, none);
      else if (mode == "bicubic")
        r = aa ? at::_upsample_bicubic2d_aa(c, sz, false, none, none) : at::upsample_bicubic2d(c, sz, false, none, none);
      else
        r = at::upsample_nearest2d(c, sz, none, none);
      out.narrow(0, i, 1).copy_(r);
    }
  });
  return Out(a, out);
}

}  // namespace mm
