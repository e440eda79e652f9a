// Module entry: exports every op that an OP(...) definition registered, and the image kernels
// (IMAGE_OP, native/src/image/) under `image`.
#include "common.h"

namespace mm {

std::vector<Registrar*>& Registry() {
  static std::vector<Registrar*> all;
  return all;
}

Registrar::Registrar(const char* name, const char* sig, Fn guarded, const char* group)
    : info{name, sig}, fn(guarded), group(group) {
  Registry().push_back(this);
}

}  // namespace mm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  for (mm::Registrar* r : mm::Registry()) {
    Napi::Object target = exports;
    if (r->group) {
      if (!exports.Has(r->group)) exports.Set(r->group, Napi::Object::New(env));
      target = exports.Get(r->group).As<Napi::Object>();
    }
    target.Set(r->info.name, Napi::Function::New(env, r->fn, r->info.name, &r->info));
  }
  return exports;
}

NODE_API_MODULE(mmoco_native, InitAddon)
