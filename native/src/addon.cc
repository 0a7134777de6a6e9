// The tswg_native addon: registers each part of the native fast path on the exports object.
#include <napi.h>

#include "addon_data.h"
#include "crypto_binding.h"

#ifdef __linux__
#include "datapath.h"
#include "helpers_binding.h"
#include "tun_device.h"
#include "udp_port.h"
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  tswg::DefineCryptoFunctions(env, exports);
#ifdef __linux__
  auto* data = new tswg::AddonData();
  Napi::Function tun = tswg::TunDevice::Define(env);
  Napi::Function udp = tswg::UdpPort::Define(env);
  data->tun_constructor = Napi::Persistent(tun);
  data->udp_constructor = Napi::Persistent(udp);
  env.SetInstanceData(data);
  exports.Set("Tun", tun);
  exports.Set("Udp", udp);
  exports.Set("DataPath", tswg::DataPath::Define(env));
  tswg::DefineHelperFunctions(env, exports);
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(tswg_native, Init)
