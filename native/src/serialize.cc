// PyTorch's zip container (what torch.save writes since 1.6) through libtorch's own reader and
// writer, caffe2::serialize::PyTorchStreamReader / PyTorchStreamWriter. These ops know nothing
// of pickles or checkpoints: they list, read and write records, and view raw storage bytes as a
// tensor with the dtype, shape, strides and offset the caller read from the pickle (src/torch/io).
#include <caffe2/serialize/inline_container.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "common.h"

namespace mm {

using caffe2::serialize::PyTorchStreamReader;
using caffe2::serialize::PyTorchStreamWriter;

static std::vector<int64_t> IntsOf(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throw std::invalid_argument(what + ": expected an array of integers");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) throw std::invalid_argument(what + ": expected an array of integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (std::nearbyint(d) != d) throw std::invalid_argument(what + ": expected an array of integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

// `bytes` raw bytes as a 1-D tensor of `dt` elements (checked to be a whole number of them).
static int64_t ElementsIn(size_t bytes, at::ScalarType dt, const std::string& what) {
  const size_t esize = c10::elementSize(dt);
  if (bytes % esize != 0)
    throw std::invalid_argument(what + ": " + std::to_string(bytes) + " bytes are not a whole number of " +
                                DtypeName(dt) + " elements");
  return static_cast<int64_t>(bytes / esize);
}

// The strided view of a 1-D storage tensor the caller read from a pickle. Every element the view
// touches must lie inside the storage: the numbers come from a file, so a wrong or hostile one
// is an error here, never a read outside the buffer. The whole storage in row-major order is
// returned as it is; anything else is copied out, so a small view does not keep a large
// storage alive.
static at::Tensor ViewOf(const at::Tensor& storage, const std::vector<int64_t>& shape,
                         const std::vector<int64_t>& strides, int64_t offset, const std::string& what) {
  const int64_t elems = storage.numel();
  if (shape.size() != strides.size())
    throw std::invalid_argument(what + ": shape has " + std::to_string(shape.size()) + " dimensions, strides " +
                                std::to_string(strides.size()));
  if (offset < 0) throw std::invalid_argument(what + ": negative storage offset " + std::to_string(offset));
  bool empty = false;
  __int128 last = offset;  // the highest element index the view reads
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] < 0 || strides[d] < 0)
      throw std::invalid_argument(what + ": negative size or stride in dimension " + std::to_string(d));
    if (shape[d] == 0) empty = true;
    else last += static_cast<__int128>(shape[d] - 1) * strides[d];
  }
  if (!empty && last >= elems)
    throw std::invalid_argument(what + ": the view reaches element " + std::to_string(static_cast<int64_t>(last)) +
                                " of a storage of " + std::to_string(elems) + " " +
                                DtypeName(storage.scalar_type()) + " elements");
  at::Tensor view = storage.as_strided(shape, strides, offset);
  if (offset == 0 && view.numel() == elems && view.is_contiguous()) return view;
  return view.clone(at::MemoryFormat::Contiguous);
}

// A record's bytes (the reader's allocation, 64-byte aligned) as a 1-D tensor without a copy:
// the tensor owns the DataPtr.
static at::Tensor RecordTensor(std::tuple<at::DataPtr, size_t> rec, at::ScalarType dt, const std::string& what) {
  const int64_t elems = ElementsIn(std::get<1>(rec), dt, what);
  if (elems == 0) return at::empty({0}, at::TensorOptions().dtype(dt));
  auto owner = std::make_shared<at::DataPtr>(std::move(std::get<0>(rec)));
  void* data = owner->get();
  return at::from_blob(
      data, {elems}, [owner](void*) mutable { owner.reset(); }, at::TensorOptions().dtype(dt));
}

// zipRecords(path) -> the record names of a PyTorch zip archive (without the archive folder).
OP(zipRecords, "") {
  PyTorchStreamReader reader(Str(a, 0));
  std::vector<std::string> names = reader.getAllRecords();
  Napi::Array out = Napi::Array::New(a.Env(), names.size());
  for (size_t i = 0; i < names.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::String::New(a.Env(), names[i]));
  return out;
}

// zipRecord(path, name) -> the record's bytes as an ArrayBuffer.
OP(zipRecord, "") {
  PyTorchStreamReader reader(Str(a, 0));
  std::string name = Str(a, 1);
  if (!reader.hasRecord(name)) throw std::invalid_argument("no record '" + name + "' in the archive");
  auto rec = reader.getRecord(name);
  size_t n = std::get<1>(rec);
  Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(a.Env(), n);
  if (n) std::memcpy(buf.Data(), std::get<0>(rec).get(), n);
  return buf;
}

// zipTensors(path, specs) -> tensors, one per spec [record, dtype code, shape, strides, offset]:
// each a strided view of the record's bytes (the record itself when it is the whole of it, else
// a copy). A record several specs name is read once.
OP(zipTensors, "") {
  PyTorchStreamReader reader(Str(a, 0));
  if (!a[1].IsArray()) throw std::invalid_argument("specs: expected an array");
  Napi::Array specs = a[1].As<Napi::Array>();
  // record → its bytes as a storage tensor (of the first dtype it was read as; another dtype
  // reinterprets the same bytes, as the pickle asks)
  std::map<std::string, at::Tensor> cache;
  std::vector<at::Tensor> out;
  out.reserve(specs.Length());
  for (uint32_t i = 0; i < specs.Length(); i++) {
    Napi::Value sv = specs.Get(i);
    const std::string what = "spec " + std::to_string(i);
    if (!sv.IsArray() || sv.As<Napi::Array>().Length() != 5)
      throw std::invalid_argument(what + ": expected [record, dtype, shape, strides, offset]");
    Napi::Array s = sv.As<Napi::Array>();
    if (!s.Get(0u).IsString() || !s.Get(1u).IsNumber() || !s.Get(4u).IsNumber())
      throw std::invalid_argument(what + ": expected [record, dtype, shape, strides, offset]");
    std::string name = s.Get(0u).As<Napi::String>().Utf8Value();
    at::ScalarType dt = DtypeFromCode(s.Get(1u).As<Napi::Number>().Int64Value());
    const std::string rec = "record '" + name + "'";
    auto it = cache.find(name);
    if (it == cache.end()) {
      if (!reader.hasRecord(name)) throw std::invalid_argument(what + ": no record '" + name + "' in the archive");
      it = cache.emplace(name, RecordTensor(reader.getRecord(name), dt, rec)).first;
    }
    at::Tensor storage = it->second;
    if (storage.scalar_type() != dt) {
      ElementsIn(storage.numel() * storage.element_size(), dt, rec);
      storage = storage.view(dt);
    }
    out.push_back(ViewOf(storage, IntsOf(s.Get(2u), what), IntsOf(s.Get(3u), what),
                         s.Get(4u).As<Napi::Number>().Int64Value(), rec));
  }
  return OutList(a, out);
}

// stridedFromBuffer(typedArray, dtype, shape, strides, offset) -> a tensor viewing the bytes as
// a storage of `dtype` (copied), for storages read in TypeScript (PyTorch's legacy format).
OP(stridedFromBuffer, "") {
  if (!a[0].IsTypedArray()) throw std::invalid_argument("argument 0: expected a TypedArray");
  Napi::TypedArray ta = a[0].As<Napi::TypedArray>();
  const uint8_t* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  const at::ScalarType dt = DT(a, 1);
  // copied: JS owns the buffer, and the bytes may sit at any alignment
  at::Tensor storage = at::empty({ElementsIn(ta.ByteLength(), dt, "storage")}, at::TensorOptions().dtype(dt));
  if (ta.ByteLength()) std::memcpy(storage.data_ptr(), src, ta.ByteLength());
  return Out(a, ViewOf(storage, IL(a, 2), IL(a, 3), I(a, 4), "storage"));
}

// zipWrite(path, names, buffers): a PyTorch zip archive (folder 'archive', records 64-byte
// aligned, stored uncompressed, then 'version') written to `path`.
OP(zipWrite, "") {
  std::string path = Str(a, 0);
  if (!a[1].IsArray() || !a[2].IsArray()) throw std::invalid_argument("names and buffers must be arrays");
  Napi::Array names = a[1].As<Napi::Array>(), bufs = a[2].As<Napi::Array>();
  if (names.Length() != bufs.Length()) throw std::invalid_argument("as many names as buffers are needed");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) throw std::runtime_error("cannot open " + path + " for writing: " + std::strerror(errno));
  FILE* fp = f.get();
  // Checked before the writer exists: its destructor finishes the archive, and an exception
  // thrown from there would end the process.
  std::vector<std::string> keys(names.Length());
  std::vector<Napi::TypedArray> data(names.Length());
  std::set<std::string> seen;
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value nv = names.Get(i), bv = bufs.Get(i);
    if (!nv.IsString() || !bv.IsTypedArray())
      throw std::invalid_argument("record " + std::to_string(i) + ": expected a name and a TypedArray");
    keys[i] = nv.As<Napi::String>().Utf8Value();
    if (keys[i].empty() || !seen.insert(keys[i]).second)
      throw std::invalid_argument("record " + std::to_string(i) + ": empty or repeated name '" + keys[i] + "'");
    data[i] = bv.As<Napi::TypedArray>();
  }
  // A failed write is remembered and reported after the writer is done, so that the writer
  // itself never sees an error (nor throws from its destructor).
  int error = 0;
  {
    PyTorchStreamWriter writer([fp, &error](const void* buf, size_t n) -> size_t {
      if (!error && n && std::fwrite(buf, 1, n, fp) != n) error = errno ? errno : EIO;
      return n;
    });
    for (size_t i = 0; i < keys.size(); i++) {
      const uint8_t* src = static_cast<uint8_t*>(data[i].ArrayBuffer().Data()) + data[i].ByteOffset();
      writer.writeRecord(keys[i], src, data[i].ByteLength());
    }
    writer.writeEndOfFile();
  }
  if (!error && std::fflush(fp) != 0) error = errno ? errno : EIO;
  if (error) throw std::runtime_error("writing " + path + ": " + std::strerror(error));
  return a.Env().Undefined();
}

}  // namespace mm
