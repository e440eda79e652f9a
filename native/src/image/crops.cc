// Per-image resized crops of a batch (src/data/transforms/geometry.ts' resizedCrop on the CPU,
// through src/data/native/kernels.ts): torchvision's resized_crop with a box per image, in one
// call. And one HWC image resized, padded and cropped off the JS thread (resizeCropImage: the
// loader's per-image ResizeCenterCrop, src/data/fit.ts).
#include "../common.h"

namespace mm {

// OpenMP's thread count is per calling thread; weak, so that a libtorch built with another
// parallel backend (no libgomp) still loads the addon.
extern "C" {
int omp_get_max_threads(void) __attribute__((weak));
void omp_set_num_threads(int) __attribute__((weak));
}

namespace {

// F.interpolate(x, size, mode, align_corners=false, antialias) on NCHW float input: the
// functions src/torch's F.interpolate calls (native/src/nn.cc), with the scales left to them.
at::Tensor Interpolate(const at::Tensor& x, at::IntArrayRef size, const std::string& mode, bool aa) {
  c10::optional<double> none;
  if (mode == "bilinear")
    return aa ? at::_upsample_bilinear2d_aa(x, size, false, none, none) : at::upsample_bilinear2d(x, size, false, none, none);
  if (mode == "bicubic")
    return aa ? at::_upsample_bicubic2d_aa(x, size, false, none, none) : at::upsample_bicubic2d(x, size, false, none, none);
  return at::upsample_nearest2d(x, size, none, none);
}

void CheckMode(const std::string& mode) {
  if (mode != "bilinear" && mode != "bicubic" && mode != "nearest")
    throw std::invalid_argument("mode must be 'bilinear', 'bicubic' or 'nearest', got '" + mode + "'");
}

// Libtorch's kernels on this thread run serially while it lives. One image's ops are too small
// to share: an OpenMP team per op can cost more than the op (500x375 to 256 on the JS thread of
// the 2-core machine: 1.8 ms at one thread, 9 to 70 ms at two with the other core busy), and
// the pool's other threads resize other images meanwhile.
class OneIntraOpThread {
 public:
  OneIntraOpThread() {
    if (!omp_set_num_threads || !omp_get_max_threads) return;
    // ATen sets a thread's OpenMP count on its first parallel call; this makes that happen now,
    // so that it cannot undo the 1 set below
    (void)at::get_num_threads();
    before_ = omp_get_max_threads();
    omp_set_num_threads(1);
  }
  ~OneIntraOpThread() {
    if (before_ > 0) omp_set_num_threads(before_);
  }
  OneIntraOpThread(const OneIntraOpThread&) = delete;
  OneIntraOpThread& operator=(const OneIntraOpThread&) = delete;

 private:
  int before_ = 0;
};

// One HWC uint8 image: resized (unless rh is 0), rounded back to uint8, zero-padded, cropped to
// the box; the result as HWC uint8 in a buffer of its own. Runs on a libuv pool thread.
class ResizeCropJob : public Napi::AsyncWorker {
 public:
  ResizeCropJob(Napi::Env env, Napi::Uint8Array px, int64_t w, int64_t h, int64_t rh, int64_t rw, std::string mode,
                bool aa, std::vector<int64_t> pads, std::vector<int64_t> box)
      : Napi::AsyncWorker(env, "mmoco.resizeCropImage"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ref_(Napi::Persistent(px)),
        data_(px.Data()),
        w_(w),
        h_(h),
        rh_(rh),
        rw_(rw),
        mode_(std::move(mode)),
        aa_(aa),
        pads_(std::move(pads)),
        box_(std::move(box)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      c10::InferenceMode inference;
      OneIntraOpThread serial;
      // NCHW contiguous, as imagesToBatch gives the batch path: the same kernels see the same layout
      at::Tensor x = at::from_blob(const_cast<uint8_t*>(data_), {h_, w_, 3}, at::TensorOptions().dtype(at::kByte))
                         .permute({2, 0, 1})
                         .unsqueeze(0)
                         .contiguous();
      if (rh_ > 0 && (rh_ != h_ || rw_ != w_)) {
        std::vector<int64_t> size = {rh_, rw_};
        at::Tensor y = Interpolate(x.to(at::kFloat), size, mode_, aa_);
        if (mode_ == "bicubic") y = y.clamp(0, 255);
        x = y.round().to(at::kByte);
      }
      if (pads_[0] || pads_[1] || pads_[2] || pads_[3]) x = at::constant_pad_nd(x, pads_, 0);
      const int64_t top = box_[0], left = box_[1], oh = box_[2], ow = box_[3];
      if (top < 0 || left < 0 || top + oh > x.size(2) || left + ow > x.size(3))
        throw std::invalid_argument("box " + std::to_string(top) + "," + std::to_string(left) + "," +
                                    std::to_string(oh) + "," + std::to_string(ow) + " is not inside the " +
                                    std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                                    " resized and padded image");
      at::Tensor c = x.narrow(2, top, oh).narrow(3, left, ow).squeeze(0).permute({1, 2, 0});
      out_ = new std::vector<uint8_t>(static_cast<size_t>(oh * ow * 3));
      at::from_blob(out_->data(), {oh, ow, 3}, at::TensorOptions().dtype(at::kByte)).copy_(c);
    } catch (const c10::Error& e) {
      SetError(std::string("resizeCropImage: ") + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(std::string("resizeCropImage: ") + e.what());
    }
  }

  void OnOK() override {
    std::vector<uint8_t>* owned = out_;
    out_ = nullptr;
    deferred_.Resolve(Napi::Buffer<uint8_t>::New(
        Env(), owned->data(), owned->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  ~ResizeCropJob() override { delete out_; }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> ref_;
  const uint8_t* data_;
  int64_t w_, h_, rh_, rw_;
  std::string mode_;
  bool aa_;
  std::vector<int64_t> pads_, box_;
  std::vector<uint8_t>* out_ = nullptr;
};

}  // namespace

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
  CheckMode(mode);
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
      at::Tensor r = b[2] == oh && b[3] == ow ? c : Interpolate(c, size, mode, aa);
      out.narrow(0, i, 1).copy_(r);
    }
  });
  return Out(a, out);
}

// resizeCropImage(pixels: Uint8Array (HWC RGB), width, height, resizeH, resizeW (0, 0: no
// resize), mode, antialias, pads [left, right, top, bottom], box [top, left, height, width]) ->
// Promise<Buffer> (HWC RGB, box height x width): the ops of ResizeCenterCrop.forward on a batch
// of one (src/data/transforms/geometry.ts, which computes the sizes, pads and box): resize as
// F.resize on uint8 (float32, interpolate, round back), zero pad, crop. It runs in the libuv
// pool on one intra-op thread, so images in flight at once use the cores. The pixels are read
// there: the caller must not change them before the promise settles.
IMAGE_OP(resizeCropImage, "") {
  if (!a[0].IsTypedArray() || a[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(a.Env(), "resizeCropImage: pixels must be a Uint8Array, got " + Describe(a, 0));
  Napi::Uint8Array px = a[0].As<Napi::Uint8Array>();
  const int64_t w = I(a, 1), h = I(a, 2), rh = I(a, 3), rw = I(a, 4);
  std::string mode = Str(a, 5);
  bool aa = B(a, 6);
  std::vector<int64_t> pads = IL(a, 7), box = IL(a, 8);
  if (w < 1 || h < 1)
    throw std::invalid_argument("width and height must be positive, got " + std::to_string(w) + "x" + std::to_string(h));
  if (static_cast<int64_t>(px.ElementLength()) != w * h * 3)
    throw std::invalid_argument("pixels holds " + std::to_string(px.ElementLength()) + " bytes, " + std::to_string(w) +
                                "x" + std::to_string(h) + "x3 needs " + std::to_string(w * h * 3));
  if ((rh == 0) != (rw == 0) || rh < 0 || rw < 0)
    throw std::invalid_argument("resize size must be positive (or 0, 0: no resize), got " + std::to_string(rh) + "x" +
                                std::to_string(rw));
  CheckMode(mode);
  if (pads.size() != 4 || box.size() != 4)
    throw std::invalid_argument("pads and box must hold 4 numbers each, got " + std::to_string(pads.size()) + " and " +
                                std::to_string(box.size()));
  for (int64_t p : pads)
    if (p < 0) throw std::invalid_argument("pads must not be negative, got " + std::to_string(p));
  const int64_t ph = (rh ? rh : h) + pads[2] + pads[3], pw = (rw ? rw : w) + pads[0] + pads[1];
  if (box[0] < 0 || box[1] < 0 || box[2] < 1 || box[3] < 1 || box[0] + box[2] > ph || box[1] + box[3] > pw)
    throw std::invalid_argument("box " + std::to_string(box[0]) + "," + std::to_string(box[1]) + "," +
                                std::to_string(box[2]) + "," + std::to_string(box[3]) + " is not inside the " +
                                std::to_string(ph) + "x" + std::to_string(pw) + " resized and padded image");
  auto* job = new ResizeCropJob(a.Env(), px, w, h, rh, rw, std::move(mode), aa, std::move(pads), std::move(box));
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

}  // namespace mm
