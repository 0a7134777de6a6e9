// JavaScript functions for the "native" crypto backend: ChaCha20-Poly1305 on the calling
// thread, one packet per call, and a batched seal used by the benchmark.
#pragma once

#include <napi.h>

namespace tswg {

// Adds aeadSeal, aeadOpen and aeadSealBatch to `exports`.
void DefineCryptoFunctions(Napi::Env env, Napi::Object exports);

}  // namespace tswg
