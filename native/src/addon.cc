// Module entry: exports every op that an OP(...) definition registered.
#include "common.h"

namespace mm {

std::vector<Registrar*>& Registry() {
  static std::vector<Registrar*> all;
  return all;
}

Registrar::Registrar(const char* name, const char* sig, Fn guarded) : info{name, sig}, fn(guarded) {
  Registry().push_back(this);
}

}  // namespace mm

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  for (mm::Registrar* r : mm::Registry())
    exports.Set(r->info.name, Napi::Function::New(env, r->fn, r->info.name, &r->info));
  return exports;
}

NODE_API_MODULE(mmoco_native, InitAddon)
