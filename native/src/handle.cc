// Tensor handles (napi externals), argument readers and error reporting.
#include <cstring>
#include <sstream>

#include "common.h"

namespace mm {

static std::vector<at::Tensor> g_slots;
static std::vector<int32_t> g_free;
static int64_t g_live = 0;
// Slot numbers stay below 2^30 so they are V8 small integers.
constexpr size_t kMaxSlots = size_t(1) << 30;

int64_t LiveCount() { return g_live; }

static int64_t NativeBytes(const at::Tensor& t) {
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

// Large tensors are reported to V8 so that its collector, which cannot see native memory,
// runs the TS layer's finalisers when unreleased handles pile up. Small ones are not worth
// the call.
constexpr int64_t kReportBytes = 1 << 16;

at::Tensor* Lookup(int64_t id) {
  if (id < 0 || static_cast<size_t>(id) >= g_slots.size()) return nullptr;
  at::Tensor* t = &g_slots[id];
  return t->defined() ? t : nullptr;
}

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  int64_t bytes = NativeBytes(t);
  int32_t id;
  if (!g_free.empty()) {
    id = g_free.back();
    g_free.pop_back();
    g_slots[id] = std::move(t);
  } else {
    if (g_slots.size() >= kMaxSlots) throw std::runtime_error("too many live tensors (2^30)");
    id = static_cast<int32_t>(g_slots.size());
    g_slots.push_back(std::move(t));
  }
  ++g_live;
  if (bytes >= kReportBytes) {
    int64_t ignored;
    napi_adjust_external_memory(env, bytes, &ignored);
  }
  napi_value out;
  napi_create_int32(env, id, &out);
  return Napi::Value(env, out);
}

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array arr = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); ++i) arr.Set(static_cast<uint32_t>(i), Wrap(env, ts[i]));
  return arr;
}

static bool Release(napi_env env, int64_t id) {
  at::Tensor* t = Lookup(id);
  if (!t) return false;
  int64_t bytes = NativeBytes(*t);
  t->reset();
  g_free.push_back(static_cast<int32_t>(id));
  --g_live;
  if (bytes >= kReportBytes) {
    int64_t ignored;
    napi_adjust_external_memory(env, -bytes, &ignored);
  }
  return true;
}

static int64_t SlotOf(const Napi::Value& v) {
  napi_valuetype type;
  napi_typeof(v.Env(), v, &type);
  if (type != napi_number) return -1;
  int64_t id;
  napi_get_value_int64(v.Env(), v, &id);
  return id;
}

// ---- dtypes ----
static const at::ScalarType kDtypes[] = {
    at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kLong,
    at::kInt,   at::kByte,   at::kBool, at::kChar,     at::kShort,
};
static const char* kDtypeNames[] = {"float32", "float64", "float16", "bfloat16", "int64",
                                    "int32",   "uint8",   "bool",    "int8",     "int16"};
constexpr int64_t kNumDtypes = sizeof(kDtypes) / sizeof(kDtypes[0]);

at::ScalarType DtypeFromCode(int64_t code) {
  if (code < 0 || code >= kNumDtypes) throw std::invalid_argument("unknown dtype code " + std::to_string(code));
  return kDtypes[code];
}
int64_t CodeFromDtype(at::ScalarType t) {
  for (int64_t i = 0; i < kNumDtypes; ++i)
    if (kDtypes[i] == t) return i;
  throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(t));
}
std::string DtypeName(at::ScalarType t) {
  for (int64_t i = 0; i < kNumDtypes; ++i)
    if (kDtypes[i] == t) return kDtypeNames[i];
  return c10::toString(t);
}

// ---- descriptions and errors ----
static std::string DescribeTensor(const at::Tensor* t) {
  if (!t) return "Tensor(disposed)";
  std::ostringstream os;
  os << "Tensor(" << DtypeName(t->scalar_type()) << "[";
  auto sizes = t->sizes();
  for (size_t i = 0; i < sizes.size(); ++i) os << (i ? ", " : "") << sizes[i];
  os << "], " << t->device() << ")";
  return os.str();
}

static std::string DescribeValue(const Napi::Value& v, char kind) {
  napi_valuetype type;
  napi_typeof(v.Env(), v, &type);
  std::ostringstream os;
  switch (type) {
    case napi_number:
      if (kind == 'T' || kind == 'L') return DescribeTensor(Lookup(SlotOf(v)));
      os << v.As<Napi::Number>().DoubleValue();
      return os.str();
    case napi_boolean:
      return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_string:
      return "'" + v.As<Napi::String>().Utf8Value() + "'";
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_object: {
      if (v.IsArray()) {
        Napi::Array arr = v.As<Napi::Array>();
        os << "[";
        uint32_t n = arr.Length();
        for (uint32_t i = 0; i < n && i < 8; ++i) os << (i ? ", " : "") << DescribeValue(arr.Get(i), kind);
        if (n > 8) os << ", ... (" << n << " items)";
        os << "]";
        return os.str();
      }
      if (v.IsTypedArray()) return "TypedArray(" + std::to_string(v.As<Napi::TypedArray>().ElementLength()) + ")";
      return "object";
    }
    default:
      return "value";
  }
}

std::string Describe(const Napi::CallbackInfo& a, size_t i) {
  const char* sig = static_cast<OpInfo*>(a.Data())->sig;
  char kind = i < std::strlen(sig) ? sig[i] : '.';
  return DescribeValue(a[i], kind);
}

void ThrowOpError(const Napi::CallbackInfo& info, const char* what) {
  std::ostringstream os;
  os << OpName(info) << ": " << what << " (arguments: ";
  size_t n = info.Length();
  // Trailing undefined arguments are optional ones left out; they add nothing.
  while (n > 0 && info[n - 1].IsUndefined()) --n;
  for (size_t i = 0; i < n; ++i) os << (i ? ", " : "") << Describe(info, i);
  os << ")";
  throw Napi::Error::New(info.Env(), os.str());
}

// ---- argument readers ----
[[noreturn]] static void BadArg(const Napi::CallbackInfo& a, size_t i, const char* expected) {
  throw Napi::TypeError::New(a.Env(), std::string(OpName(a)) + ": argument " + std::to_string(i) + ": expected " +
                                          expected + ", got " + Describe(a, i));
}

static at::Tensor& TensorFrom(const Napi::CallbackInfo& a, const Napi::Value& v, size_t i) {
  int64_t id = SlotOf(v);
  at::Tensor* t = Lookup(id);
  if (t) return *t;
  if (id >= 0 && static_cast<size_t>(id) < g_slots.size())
    throw Napi::Error::New(a.Env(), std::string(OpName(a)) + ": argument " + std::to_string(i) +
                                        " is a disposed tensor");
  throw Napi::TypeError::New(a.Env(), std::string(OpName(a)) + ": argument " + std::to_string(i) +
                                          ": expected a Tensor, got " + DescribeValue(v, '.'));
}

at::Tensor& T(const Napi::CallbackInfo& a, size_t i) { return TensorFrom(a, a[i], i); }

bool IsNullish(const Napi::CallbackInfo& a, size_t i) {
  if (i >= a.Length()) return true;
  Napi::Value v = a[i];
  return v.IsUndefined() || v.IsNull();
}

c10::optional<at::Tensor> OptT(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return c10::nullopt;
  return T(a, i);
}

std::vector<at::Tensor> TL(const Napi::CallbackInfo& a, size_t i) {
  if (!a[i].IsArray()) BadArg(a, i, "an array of Tensors");
  Napi::Array arr = a[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) out.push_back(TensorFrom(a, arr.Get(k), i));
  return out;
}

std::vector<c10::optional<at::Tensor>> OptTL(const Napi::CallbackInfo& a, size_t i) {
  if (!a[i].IsArray()) BadArg(a, i, "an array of Tensors or nulls");
  Napi::Array arr = a[i].As<Napi::Array>();
  std::vector<c10::optional<at::Tensor>> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (v.IsNull() || v.IsUndefined())
      out.emplace_back(c10::nullopt);
    else
      out.emplace_back(TensorFrom(a, v, i));
  }
  return out;
}

at::Scalar S(const Napi::CallbackInfo& a, size_t i) {
  Napi::Value v = a[i];
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // JS has one number type; integral values act as Python ints so integer tensors stay integer.
    if (std::nearbyint(d) == d && std::abs(d) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  BadArg(a, i, "a number or boolean");
}

double D(const Napi::CallbackInfo& a, size_t i) {
  if (!a[i].IsNumber()) BadArg(a, i, "a number");
  return a[i].As<Napi::Number>().DoubleValue();
}

int64_t I(const Napi::CallbackInfo& a, size_t i) {
  if (!a[i].IsNumber()) BadArg(a, i, "an integer");
  double d = a[i].As<Napi::Number>().DoubleValue();
  if (std::nearbyint(d) != d) BadArg(a, i, "an integer");
  return static_cast<int64_t>(d);
}

c10::optional<int64_t> OptI(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return c10::nullopt;
  return I(a, i);
}

c10::optional<double> OptD(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return c10::nullopt;
  return D(a, i);
}

bool B(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return false;
  if (!a[i].IsBoolean()) BadArg(a, i, "a boolean");
  return a[i].As<Napi::Boolean>().Value();
}

std::string Str(const Napi::CallbackInfo& a, size_t i) {
  if (!a[i].IsString()) BadArg(a, i, "a string");
  return a[i].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> IL(const Napi::CallbackInfo& a, size_t i) {
  Napi::Value v = a[i];
  if (v.IsNumber()) return {I(a, i)};
  if (!v.IsArray()) BadArg(a, i, "an integer or an array of integers");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value e = arr.Get(k);
    if (!e.IsNumber()) BadArg(a, i, "an array of integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (std::nearbyint(d) != d) BadArg(a, i, "an array of integers");
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

at::ScalarType DT(const Napi::CallbackInfo& a, size_t i) { return DtypeFromCode(I(a, i)); }

c10::optional<at::ScalarType> OptDT(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return c10::nullopt;
  return DT(a, i);
}

at::Device Dev(const Napi::CallbackInfo& a, size_t i) {
  if (IsNullish(a, i)) return at::Device(at::kCPU);
  return at::Device(Str(a, i));
}

at::TensorOptions Opts(const Napi::CallbackInfo& a, size_t dtypeArg, size_t deviceArg) {
  at::TensorOptions o = at::TensorOptions().dtype(IsNullish(a, dtypeArg) ? at::kFloat : DT(a, dtypeArg));
  if (!IsNullish(a, deviceArg)) o = o.device(Dev(a, deviceArg));
  return o;
}

// ---- handle-level ops ----
OP(release, "") { return Napi::Boolean::New(a.Env(), Release(a.Env(), SlotOf(a[0]))); }
OP(isLive, "") { return Napi::Boolean::New(a.Env(), Lookup(SlotOf(a[0])) != nullptr); }
OP(liveCount, "") { return Napi::Number::New(a.Env(), static_cast<double>(LiveCount())); }
OP(shape, "T") {
  auto sizes = T(a, 0).sizes();
  Napi::Array arr = Napi::Array::New(a.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) arr.Set(static_cast<uint32_t>(i), static_cast<double>(sizes[i]));
  return arr;
}
OP(strides, "T") {
  auto st = T(a, 0).strides();
  Napi::Array arr = Napi::Array::New(a.Env(), st.size());
  for (size_t i = 0; i < st.size(); ++i) arr.Set(static_cast<uint32_t>(i), static_cast<double>(st[i]));
  return arr;
}
OP(dtype, "T") { return Napi::Number::New(a.Env(), static_cast<double>(CodeFromDtype(T(a, 0).scalar_type()))); }
OP(device, "T") { return Napi::String::New(a.Env(), T(a, 0).device().str()); }
OP(numel, "T") { return Napi::Number::New(a.Env(), static_cast<double>(T(a, 0).numel())); }
OP(dim, "T") { return Napi::Number::New(a.Env(), static_cast<double>(T(a, 0).dim())); }
OP(isContiguous, "T") { return Napi::Boolean::New(a.Env(), T(a, 0).is_contiguous()); }
// A second handle on the same tensor (shares storage and autograd identity).
OP(alias, "T") { return Out(a, T(a, 0)); }


}  // namespace mm
