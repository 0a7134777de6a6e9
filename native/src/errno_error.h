// Turning a failed system call into a JavaScript Error that carries the errno name.
#pragma once

#include <napi.h>

#include <string>

namespace tswg {

// Symbolic name of an errno value ("EBUSY"), or "E<number>" when unknown.
std::string ErrnoName(int err);

// Error whose message is "<syscall>: <strerror>" with `code` (errno name), `errno`
// and `syscall` properties, so that the TypeScript side can map it to a friendly message.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall);

}  // namespace tswg
