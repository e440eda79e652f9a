// JPEG files to RGB pixels with libjpeg(-turbo), off the JS thread: the data sets' decoder for
// JPEGs (src/data/native/jpeg.ts). One call reads and decodes a list of files in a libuv pool
// thread (split over `threads` threads) and resolves with all pixels in one buffer, so the
// per-image cost is the decoder's own (PIL's, since PIL decodes with the same library) instead
// of sharp's per-call pipeline set-up. decodeJpegBuffers does the same for JPEGs held in one
// Buffer (a packed data set, src/data/pack.ts), each optionally split into a shared prefix
// (a header part stored once per pack) and its own rest, joined again before decoding.
//
// The one place that decides which files are plain JPEGs: only what decodes to the same pixels
// as the sharp path is decoded here: 8-bit baseline or progressive JPEGs in YCbCr, RGB or
// grayscale (replicated to three channels, as sharp does), without an embedded ICC profile and
// upright (no EXIF orientation other than 1). Everything else — other formats, CMYK, rotated or
// ICC-tagged files, and any file the library reports an error or a warning for (corrupt,
// truncated) — comes back undecoded with the reason, for sharp to decode or reject; so a bad
// file never fails the call.
#include "../common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
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

// The JPEG signature (SOI and the next marker's 0xFF) at the start of data.
bool LooksLikeJpeg(const std::vector<uint8_t>& d, std::string& why) {
  if (d.size() < 3 || d[0] != 0xFF || d[1] != 0xD8 || d[2] != 0xFF) {
    why = d.empty() ? "empty file" : "not a JPEG";
    return false;
  }
  return true;
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
  return LooksLikeJpeg(buf, why);
}

struct Part {
  std::vector<uint8_t> pixels;
  // per file: offset into pixels, width, height (width -1: not decoded)
  std::vector<int64_t> meta;
  std::vector<std::string> why;
};

// fetch(i, bytes, why) puts item i's JPEG into bytes, or says why not and returns false.
template <typename Fetch>
void DecodeRange(Fetch&& fetch, size_t from, size_t to, Part& p) {
  Decoder d;
  std::vector<uint8_t> file;
  p.meta.assign(3 * (to - from), 0);
  p.why.assign(to - from, std::string());
  for (size_t i = from; i < to; i++) {
    size_t k = i - from;
    p.meta[3 * k] = static_cast<int64_t>(p.pixels.size());
    p.meta[3 * k + 1] = -1;
    if (!fetch(i, file, p.why[k])) continue;
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

// Decodes n items split over `threads` threads and resolves with { pixels, meta, reasons }.
// Subclasses say how item i's bytes are fetched (Fetch, called on pool threads).
class DecodeJob : public Napi::AsyncWorker {
 public:
  DecodeJob(Napi::Env env, const char* name, size_t n, int threads)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), n_(n), threads_(threads) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  virtual bool Fetch(size_t i, std::vector<uint8_t>& bytes, std::string& why) const = 0;

  void Execute() override {
    const int64_t n = static_cast<int64_t>(n_);
    std::vector<Part> parts(static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(threads_, n))));
    auto fetch = [this](size_t i, std::vector<uint8_t>& b, std::string& why) { return Fetch(i, b, why); };
    const int64_t t = ParallelChunks(n, threads_, [&](int64_t j, int64_t begin, int64_t end) {
      DecodeRange(fetch, static_cast<size_t>(begin), static_cast<size_t>(end), parts[j]);
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
  size_t n_;
  int threads_;
  std::vector<uint8_t>* pixels_ = nullptr;
  std::vector<int64_t> meta_;
  std::vector<std::string> why_;
};

class FilesJob : public DecodeJob {
 public:
  FilesJob(Napi::Env env, std::vector<std::string> paths, int threads)
      : DecodeJob(env, "mmoco.decodeJpegFiles", paths.size(), threads), paths_(std::move(paths)) {}
  bool Fetch(size_t i, std::vector<uint8_t>& bytes, std::string& why) const override {
    return ReadFile(paths_[i], bytes, why);
  }

 private:
  std::vector<std::string> paths_;
};

// Items of one Buffer: per item (prefix offset, prefix length, offset, length); the JPEG is the
// prefix followed by the rest (prefix length 0: the rest alone). The Buffer is held by a
// reference until the job ends, so JS cannot free it while pool threads read it.
class BuffersJob : public DecodeJob {
 public:
  BuffersJob(Napi::Env env, Napi::Buffer<uint8_t> data, std::vector<int64_t> items, int threads)
      : DecodeJob(env, "mmoco.decodeJpegBuffers", items.size() / 4, threads),
        ref_(Napi::Persistent(data)),
        data_(data.Data()),
        items_(std::move(items)) {}
  bool Fetch(size_t i, std::vector<uint8_t>& bytes, std::string& why) const override {
    const int64_t* it = items_.data() + 4 * i;
    bytes.resize(static_cast<size_t>(it[1] + it[3]));
    if (it[1] > 0) std::memcpy(bytes.data(), data_ + it[0], static_cast<size_t>(it[1]));
    if (it[3] > 0) std::memcpy(bytes.data() + it[1], data_ + it[2], static_cast<size_t>(it[3]));
    return LooksLikeJpeg(bytes, why);
  }

 private:
  Napi::Reference<Napi::Buffer<uint8_t>> ref_;
  const uint8_t* data_;
  std::vector<int64_t> items_;
};

}  // namespace

// decodeJpegFiles(paths: string[], threads: number) -> Promise<{ pixels: Buffer, meta:
// Float64Array (offset, width, height per file; width -1: not decoded), reasons: string[] }>
IMAGE_OP(decodeJpegFiles, "..") {
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
  auto* job = new FilesJob(a.Env(), std::move(paths), threads);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

// decodeJpegBuffers(data: Buffer, items: Float64Array (prefix offset, prefix length, offset,
// length per item), threads: number) -> the same promise as decodeJpegFiles. Every range must
// lie inside data (checked here, before any thread reads it).
IMAGE_OP(decodeJpegBuffers, "...") {
  if (!a[0].IsBuffer()) throw Napi::TypeError::New(a.Env(), "decodeJpegBuffers: data must be a Buffer");
  if (!a[1].IsTypedArray() || a[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(a.Env(), "decodeJpegBuffers: items must be a Float64Array");
  auto data = a[0].As<Napi::Buffer<uint8_t>>();
  auto list = a[1].As<Napi::Float64Array>();
  if (list.ElementLength() % 4 != 0)
    throw std::invalid_argument("decodeJpegBuffers: items must hold 4 numbers per item, got " +
                                std::to_string(list.ElementLength()));
  const double size = static_cast<double>(data.Length());
  std::vector<int64_t> items(list.ElementLength());
  for (size_t k = 0; k < items.size(); k += 4) {
    for (size_t r = 0; r < 4; r += 2) {
      const double off = list[k + r], len = list[k + r + 1];
      if (!(off >= 0 && len >= 0 && off + len <= size) || off != std::floor(off) || len != std::floor(len))
        throw std::invalid_argument("decodeJpegBuffers: item " + std::to_string(k / 4) + ": range " +
                                    std::to_string(off) + "+" + std::to_string(len) + " is outside the buffer of " +
                                    std::to_string(data.Length()) + " bytes");
      items[k + r] = static_cast<int64_t>(off);
      items[k + r + 1] = static_cast<int64_t>(len);
    }
  }
  int threads = static_cast<int>(I(a, 2));
  if (threads < 1 || threads > 256) throw std::invalid_argument("threads must be in 1..256");
  auto* job = new BuffersJob(a.Env(), data, std::move(items), threads);
  Napi::Promise p = job->Promise();
  job->Queue();
  return p;
}

}  // namespace mm
