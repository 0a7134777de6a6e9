// The tswg_native addon: registers each part of the native fast path on the exports object.
#include <napi.h>

#ifdef __linux__
#include "tun_device.h"
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 1));
#ifdef __linux__
  exports.Set("Tun", tswg::TunDevice::Define(env));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(tswg_native, Init)
