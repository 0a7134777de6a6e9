// Per-environment data of the addon: the constructors other classes check their arguments against.
#pragma once

#include <napi.h>

namespace tswg {

struct AddonData {
  Napi::FunctionReference tun_constructor;
  Napi::FunctionReference udp_constructor;
};

}  // namespace tswg
