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

// A strided view of `bytes` raw bytes as `dt`, copied into a tensor of its own. Every element
// the view touches must lie inside the bytes: the numbers come from a file, so a wrong or
// hostile one is an error here, never a read outside the buffer.
static at::Tensor StridedCopy(const void* data, size_t bytes, at::ScalarType dt, const std::vector<int64_t>& shape,
                              const std::vector<int64_t>& strides, int64_t offset, const std::string& what) {
  const size_t esize = c10::elementSize(dt);
  if (bytes % esize != 0)
    throw std::invalid_argument(what + ": " + std::to_string(bytes) + " bytes are not a whole number of " +
                                DtypeName(dt) + " elements");
  const int64_t elems = static_cast<int64_t>(bytes / esize);
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
                                " of a storage of " + std::to_string(elems) + " " + DtypeName(dt) + " elements");
  at::Tensor storage = at::empty({elems}, at::TensorOptions().dtype(dt));
  if (bytes) std::memcpy(storage.data_ptr(), data, bytes);
  at::Tensor view = storage.as_strided(shape, strides, offset);
  // the whole storage in row-major order: keep it as it is, else copy out what the view sees
  if (offset == 0 && view.numel() == elems && view.is_contiguous()) return view;
  return view.clone(at::MemoryFormat::Contiguous);
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
// each a strided view of the record's bytes (copied). A record several specs name is read once.
OP(zipTensors, "") {
  PyTorchStreamReader reader(Str(a, 0));
  if (!a[1].IsArray()) throw std::invalid_argument("specs: expected an array");
  Napi::Array specs = a[1].As<Napi::Array>();
  std::map<std::string, std::tuple<at::DataPtr, size_t>> cache;
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
    auto it = cache.find(name);
    if (it == cache.end()) {
      if (!reader.hasRecord(name)) throw std::invalid_argument(what + ": no record '" + name + "' in the archive");
      it = cache.emplace(name, reader.getRecord(name)).first;
    }
    out.push_back(StridedCopy(std::get<0>(it->second).get(), std::get<1>(it->second), dt, IntsOf(s.Get(2u), what),
                              IntsOf(s.Get(3u), what), s.Get(4u).As<Napi::Number>().Int64Value(),
                              "record '" + name + "'"));
  }
  return OutList(a, out);
}

// stridedFromBuffer(typedArray, dtype, shape, strides, offset) -> a tensor viewing the bytes as
// a storage of `dtype` (copied), for storages read in TypeScript (PyTorch's legacy format).
OP(stridedFromBuffer, "") {
  if (!a[0].IsTypedArray()) throw std::invalid_argument("argument 0: expected a TypedArray");
  Napi::TypedArray ta = a[0].As<Napi::TypedArray>();
  const uint8_t* src = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return Out(a, StridedCopy(src, ta.ByteLength(), DT(a, 1), IL(a, 2), IL(a, 3), I(a, 4), "storage"));
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
