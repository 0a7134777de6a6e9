// Stateless helpers: the virtio-net split and join exposed for tests, and SO_MARK for a
// socket opened elsewhere (node:dgram's, which has no such option).
#pragma once

#include <napi.h>

namespace tswg {

// Adds vnetSplit, tunCoalesce and setSocketMark to `exports`.
void DefineHelperFunctions(Napi::Env env, Napi::Object exports);

}  // namespace tswg
