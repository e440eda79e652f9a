// torch.nn.functional.grid_sample.
#include "common.h"

namespace mm {

// gridSample(input, grid, mode, paddingMode, alignCorners) as F.grid_sample on NCHW input and an
// [N, Hout, Wout, 2] grid of (x, y) in [-1, 1]: mode 'bilinear' | 'nearest' | 'bicubic',
// paddingMode 'zeros' | 'border' | 'reflection'.
OP(gridSample, "TT") {
  std::string mode = Str(a, 2);
  std::string pad = Str(a, 3);
  int64_t m = mode == "bilinear" ? 0 : mode == "nearest" ? 1 : mode == "bicubic" ? 2 : -1;
  int64_t p = pad == "zeros" ? 0 : pad == "border" ? 1 : pad == "reflection" ? 2 : -1;
  if (m < 0) throw std::invalid_argument("mode must be 'bilinear', 'nearest' or 'bicubic', got '" + mode + "'");
  if (p < 0)
    throw std::invalid_argument("paddingMode must be 'zeros', 'border' or 'reflection', got '" + pad + "'");
  return Out(a, at::grid_sampler(T(a, 0), T(a, 1), m, p, B(a, 4)));
}

}  // namespace mm
