// The tswg_netstack addon's Stack: one lwIP network interface whose packets are exchanged with
// JavaScript in batches, plus TCP, UDP and ICMP echo for the API on top of it.
#pragma once

#include <napi.h>

namespace tswg_netstack {

Napi::Function DefineStack(Napi::Env env);

}  // namespace tswg_netstack
