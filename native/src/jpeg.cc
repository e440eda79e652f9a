// JPEG files to RGB pixels with libjpeg(-turbo), off the JS thread: the loader's fast path
// (src/data/decode-native.ts). One call reads and decodes a list of files in a libuv pool
// thread (split over `threads` threads) and resolves with all pixels in one buffer, so the
// per-image cost is the decoder's own (PIL's, since PIL decodes with the same library) instead
// of sharp's per-call pipeline set-up.
//
// Only what decodes to the same pixels as the sharp path is decoded here: 8-bit baseline or
// progressive JPEGs in YCbCr, RGB or grayscale (replicated to three channels, as sharp does),
// without an embedded ICC profile and upright (no EXIF orientation other than 1). Everything
// else — other formats, CMYK, rotated or ICC-tagged files, and any file the library reports an
// error or a warning for (corrupt, truncated) — comes back undecoded with the reason, for the
// sharp path to decode or reject; so a bad file never fails the call.
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>

namespace mm {
namespace {

struct ErrorMgr {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void FailJump(j_common_ptr c) {
  auto* e = reinterpret_cast<ErrorMgr*>(c->err);
  (*c->err->format_message)(c, e->message);
  longjmp(e->jump, 1);
}

// Level -1 is a warning (corrupt data, premature end of file): it fails the image, as sharp's
// failOn 'warning' does; trace messages (level >= 0) are ignored.
void OnMessage(j_common_ptr c, int level) {
  if (level < 0) FailJump(c);
}

// sharp's default limit on input pixels (limitInputPixels)
constexpr uint64_t kMaxPixels = 0x3FFF * 0x3FFF;

uint32_t Read16(const uint8_t* p, bool le) { return le ? p[0] | (p[1] << 8) : (p[0] << 8) | p[1]; }
uint32_t Read32(const uint8_t* p, bool le) {
  return le ? p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t(p[3]) << 24)
            : (uint32_t(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
}

// EXIF orientation (tag 0x0112 of IFD0) of an APP1 marker's data, 1 when absent or unreadable.
int ExifOrientation(const uint8_t* d, size_t n) {
  if (n < 14 || std::memcmp(d, "Exif\0\0", 6) != 0) return 1;
  const uint8_t* t = d + 6;
  size_t tn = n - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  uint32_t ifd = Read32(t + 4, le);
  if (ifd + 2 > tn) return 1;
  uint32_t count = Read16(t + ifd, le);
  for (uint32_t k = 0; k < count; k++) {
    size_t e = ifd + 2 + 12 * size_t(k);
    if (e + 12 > tn) return 1;
    if (Read16(t + e, le) == 0x0112) return static_cast<int>(Read16(t + e + 8, le));
  }
  return 1;
}

struct Decoder {
  jpeg_decompress_struct cinfo;
  ErrorMgr err;
  Decoder() {
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = FailJump;
    err.pub.emit_message = OnMessage;
    err.message[0] = 0;
    jpeg_create_decompress(&cinfo);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 16);
  }
  ~Decoder() { jpeg_destroy_decompress(&cinfo); }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
};

// Decodes data into out (appended); 0: decoded, w/h set; otherwise why not in `why`. Only
// trivially destructible locals live here, as libjpeg's errors longjmp back to the setjmp.
int DecodeOne(Decoder& d, const uint8_t* data, size_t size, std::vector<uint8_t>& out, int& w, int& h,
              const char*& why) {
  jpeg_decompress_struct* c = &d.cinfo;
  size_t start = out.size();
  if (setjmp(d.err.jump)) {
    jpeg_abort_decompress(c);
    out.resize(start);
    why = d.err.message;
    return 1;
  }
  jpeg_mem_src(c, data, static_cast<unsigned long>(size));
  jpeg_read_header(c, TRUE);
  why = nullptr;
  if (c->data_precision != 8) why = "not an 8-bit JPEG";
  else if (!(c->num_components == 3 && (c->jpeg_color_space == JCS_YCbCr || c->jpeg_color_space == JCS_RGB)) &&
           !(c->num_components == 1 && c->jpeg_color_space == JCS_GRAYSCALE))
    why = "colour space is not YCbCr, RGB or grayscale";
  else if (uint64_t(c->image_width) * c->image_height > kMaxPixels) why = "too many pixels";
  for (jpeg_saved_marker_ptr m = c->marker_list; m && !why; m = m->next) {
    if (m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && std::memcmp(m->data, "ICC_PROFILE", 12) == 0)
      why = "has an ICC profile";
    else if (m->marker == JPEG_APP0 + 1 && ExifOrientation(m->data, m->data_length) != 1)
      why = "has an EXIF orientation";
  }
  if (why) {
    jpeg_abort_decompress(c);
    return 2;
  }
  c->out_color_space = JCS_RGB;
  jpeg_start_decompress(c);
  w = static_cast<int>(c->output_width);
  h = static_cast<int>(c->output_height);
  size_t row = size_t(w) * 3;
  out.resize(start + row * h);
  while (c->output_scanline < c->output_height) {
    JSAMPROW r = out.data() + start + row * c->output_scanline;
    jpeg_read_scanlines(c, &r, 1);
  }
  jpeg_finish_decompress(c);
  return 0;
}

bool ReadFile(const std::string& path, std::vector<uint8_t>& buf, std::string& why) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    why = "not a regular file";
    return false;
  }
  buf.resize(static_cast<size_t>(st.st_size) + 1);
  size_t len = 0;
  for (;;) {
    if (len == buf.size()) buf.resize(buf.size() * 2);
    ssize_t n = read(fd, buf.data() + len, buf.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = std::string("read failed: ") + std::strerror(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  close(fd);
  buf.resize(len);
  if (len < 3 || buf[0] != 0xFF || buf[1] != 0xD8 || buf[2] != 0xFF) {
    why = len == 0 ? "empty file" : "not a JPEG";
    return false;
  }
  return true;
}

struct Part {
  std::vector<uint8_t> pixels;
  // per file: offset into pixels, width, height (width -1: not decoded)
  std::vector<int64_t> meta;
  std::vector<std::string> why;
};

void DecodeRange(const std::vector<std::string>& paths, size_t from, size_t to, Part& p) {
  Decoder d;
  std::vector<uint8_t> file;
  p.meta.assign(3 * (to - from), 0);
  p.why.assign(to - from, std::string());
  for (size_t i = from; i < to; i++) {
    size_t k = i - from;
    p.meta[3 * k] = static_cast<int64_t>(p.pixels.size());
    p.meta[3 * k + 1] = -1;
    if (!ReadFile(paths[i], file, p.why[k])) continue;
    int w = 0, h = 0;
    const char* why = nullptr;
    if (DecodeOne(d, file.data(), file.size(), p.pixels, w, h, why) == 0) {
      p.meta[3 * k + 1] = w;
      p.meta[3 * k + 2] = h;
    } else {
      p.why[k] = why ? why : "decode failed";
    }
  }
}

class DecodeJob : public Napi::AsyncWorker {
 public:
  DecodeJob(Napi::Env env, std::vector<std::string> paths, int threads)
      : Napi::AsyncWorker(env, "mmoco.decodeJpegFiles"),
        deferred_(Napi::Promise::Deferred::New(env)),
        paths_(std::move(paths)),
        threads_(threads) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    const int64_t n = static_cast<int64_t>(paths_.size());
    std::vector<Part> parts(static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(threads_, n))));
    const int64_t t = ParallelChunks(n, threads_, [&](int64_t j, int64_t begin, int64_t end) {
      DecodeRange(paths_, static_cast<size_t>(begin), static_cast<size_t>(end), parts[j]);
    });
    // one buffer for all parts (the only part's as it is)
    pixels_ = new std::vector<uint8_t>(std::move(parts[0].pixels));
    meta_ = std::move(parts[0].meta);
    why_ = std::move(parts[0].why);
    for (int64_t j = 1; j < t; j++) {
      Part& p = parts[j];
      const int64_t base = static_cast<int64_t>(pixels_->size());
      pixels_->insert(pixels_->end(), p.pixels.begin(), p.pixels.end());
      for (size_t k = 0; k < p.why.size(); k++) {
        meta_.push_back(p.meta[3 * k] + base);
        meta_.push_back(p.meta[3 * k + 1]);
        meta_.push_back(p.meta[3 * k + 2]);
        why_.push_back(std::move(p.why[k]));
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    std::vector<uint8_t>* owned = pixels_;
    pixels_ = nullptr;
    // an empty external buffer would come out detached
    Napi::Buffer<uint8_t> buf;
    if (owned->empty()) {
      delete owned;
      buf = Napi::Buffer<uint8_t>::New(env, 0);
    } else {
      buf = Napi::Buffer<uint8_t>::New(
          env, owned->data(), owned->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned);
    }
    auto meta = Napi::Float64Array::New(env, meta_.size());
    for (size_t i = 0; i < meta_.size(); i++) meta[i] = static_cast<double>(meta_[i]);
    auto why = Napi::Array::New(env, why_.size());
    for (size_t i = 0; i < why_.size(); i++) why.Set(static_cast<uint32_t>(i), Napi::String::New(env, why_[i]));
    auto out = Napi::Object::New(env);
    out.Set("pixels", buf);
    out.Set("meta", meta);
    out.Set("reasons", why);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  ~DecodeJob() override { delete pixels_; }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<std::string> paths_;
  int threads_;
  std::vector<uint8_t>* pixels_ = nullptr;
  std::vector<int64_t> meta_;
  std::vector<std::string> why_;
};

}  // namespace

// decodeJpegFiles(paths: string[], threads: number) -> Promise<{ pixels: Buffer, meta:
// Float64Array (offset, width, height per file; width -1: not decoded), reasons: string[] }>
OP(decodeJpegFiles, "..") {
  if (!a[0].IsArray()) throw Napi::TypeError::New(a.Env(), "decodeJpegFiles: paths must be an array of strings");
  auto list = a[0].As<Napi::Array>();
  std::vector<std::string> paths;
  paths.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsString()) throw Napi::TypeError::New(a.Env(), "decodeJpegFiles: paths[" + std::to_string(i) + "] is not a string");
    paths.push_back(v.As<Napi::String>().Utf8Value());
  }
  int threads = static_cast<int>(I(a, 1));
  if (threads < 1 || threads > 256) throw std::invalid_argument("threads must be in 1..256");
  auto* job = new DecodeJob(a.Env(), std::move(paths), threads);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

}  // namespace mm
