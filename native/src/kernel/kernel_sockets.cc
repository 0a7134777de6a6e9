// The tswg_kernel addon: the two kinds of socket Node cannot open that kernel mode needs.
// - Netlink (rtnetlink, generic netlink): open, send one buffer, receive one datagram with a
//   timeout. Messages are built and parsed in TypeScript; configuration is synchronous and short.
// - Raw UDP sockets with a classic-BPF filter (the STUN side of a shared WireGuard port):
//   open with a filter, non-blocking receive with the sender's address, send to an address;
//   a readiness watch on the event loop (uv_poll) tells JavaScript when to drain the socket.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/ip6.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "../errno_error.h"

namespace {

using tswg::ErrnoError;

Napi::Value NetlinkOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int protocol = info[0].As<Napi::Number>().Int32Value();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  if (fd < 0) {
    ErrnoError(env, errno, "socket(AF_NETLINK)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int one = 1;
  // Extended ACKs carry the kernel's error message; absent on old kernels, which is fine.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  int rcvbuf = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "bind(AF_NETLINK)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value NetlinkSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto buf = info[1].As<Napi::Uint8Array>();
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  ssize_t n;
  do {
    n = sendto(fd, buf.Data(), buf.ByteLength(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } while (n < 0 && errno == EINTR);
  if (n < 0) ErrnoError(env, errno, "sendto(AF_NETLINK)").ThrowAsJavaScriptException();
  return env.Undefined();
}

// Receives one datagram; null after timeoutMs without one.
Napi::Value NetlinkRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int timeout = info[1].As<Napi::Number>().Int32Value();
  pollfd p{fd, POLLIN, 0};
  int r;
  do {
    r = poll(&p, 1, timeout);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    ErrnoError(env, errno, "poll(AF_NETLINK)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (r == 0) return env.Null();
  // Peek the size first: a dump part can exceed any fixed buffer.
  ssize_t size = recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
  if (size < 0) {
    ErrnoError(env, errno, "recv(AF_NETLINK)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto out = Napi::Buffer<uint8_t>::New(env, size > 0 ? size : 1);
  ssize_t n = recv(fd, out.Data(), out.Length(), 0);
  if (n < 0) {
    ErrnoError(env, errno, "recv(AF_NETLINK)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, out.Data(), n);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// rawOpen(family 4|6, filter: Uint8Array of struct sock_filter) -> fd, non-blocking.
Napi::Value RawOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int family = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  auto prog = info[1].As<Napi::Uint8Array>();
  if (prog.ByteLength() == 0 || prog.ByteLength() % sizeof(sock_filter) != 0) {
    Napi::TypeError::New(env, "rawOpen: filter must be whole sock_filter instructions").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) {
    ErrnoError(env, errno, "socket(SOCK_RAW)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (family == AF_INET6) {
    // IPv6 UDP needs a checksum; have the kernel fill it in (offset of the field in the UDP header).
    int offset = 6;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &offset, sizeof(offset)) < 0) {
      int err = errno;
      close(fd);
      ErrnoError(env, err, "setsockopt(IPV6_CHECKSUM)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(prog.ByteLength() / sizeof(sock_filter));
  fprog.filter = reinterpret_cast<sock_filter*>(prog.Data());
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) < 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "setsockopt(SO_ATTACH_FILTER)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// rawRecv(fd) -> { data, address } or null when nothing is queued.
Napi::Value RawRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint8_t buf[65536];
  sockaddr_storage from{};
  socklen_t len = sizeof(from);
  ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return env.Null();
    ErrnoError(env, errno, "recvfrom(SOCK_RAW)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  char text[INET6_ADDRSTRLEN] = "";
  if (from.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&from)->sin_addr, text, sizeof(text));
  } else if (from.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr, text, sizeof(text));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, buf, n));
  out.Set("address", Napi::String::New(env, text));
  return out;
}

// rawSend(fd, packet (UDP header + payload), address) -> bytes sent.
Napi::Value RawSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto buf = info[1].As<Napi::Uint8Array>();
  std::string addr = info[2].As<Napi::String>().Utf8Value();
  sockaddr_storage to{};
  socklen_t len;
  if (addr.find(':') != std::string::npos) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&to);
    s6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, addr.c_str(), &s6->sin6_addr) != 1) {
      Napi::TypeError::New(env, "rawSend: bad IPv6 address").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&to);
    s4->sin_family = AF_INET;
    if (inet_pton(AF_INET, addr.c_str(), &s4->sin_addr) != 1) {
      Napi::TypeError::New(env, "rawSend: bad IPv4 address").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    len = sizeof(sockaddr_in);
  }
  ssize_t n = sendto(fd, buf.Data(), buf.ByteLength(), 0, reinterpret_cast<sockaddr*>(&to), len);
  if (n < 0) {
    ErrnoError(env, errno, "sendto(SOCK_RAW)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(n));
}

// A readable-watch on one raw socket: the callback runs on the JS thread whenever the socket has
// something queued; it drains with rawRecv. One watch per fd; the JS side owns the fd's life.
struct RawWatch {
  uv_poll_t poll;
  napi_env env;
  Napi::FunctionReference callback;
};

std::unordered_map<int, RawWatch*>& Watches() {
  static std::unordered_map<int, RawWatch*> watches;
  return watches;
}

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* w = static_cast<RawWatch*>(handle->data);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  // A poll error (status < 0) is reported as readable too: rawRecv then surfaces the errno.
  (void)status;
  w->callback.MakeCallback(env.Global(), {});
  if (env.IsExceptionPending()) {
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

// rawWatch(fd, callback): calls callback() whenever fd is readable, until rawUnwatch(fd).
Napi::Value RawWatchStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (!info[1].IsFunction()) {
    Napi::TypeError::New(env, "rawWatch: callback must be a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (Watches().count(fd) != 0) {
    Napi::Error::New(env, "rawWatch: fd is already watched").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "rawWatch: no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto w = std::make_unique<RawWatch>();
  w->env = env;
  w->callback = Napi::Persistent(info[1].As<Napi::Function>());
  int r = uv_poll_init_socket(loop, &w->poll, fd);
  if (r == 0) {
    w->poll.data = w.get();
    r = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
    if (r != 0) {
      // Initialised: it must be closed through the loop before its memory goes.
      RawWatch* raw = w.release();
      uv_close(reinterpret_cast<uv_handle_t*>(&raw->poll), [](uv_handle_t* h) { delete static_cast<RawWatch*>(h->data); });
    }
  }
  if (r != 0) {
    ErrnoError(env, -r, "uv_poll(SOCK_RAW)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Watches()[fd] = w.release();
  return env.Undefined();
}

// rawUnwatch(fd): stops the watch (idempotent). Call before closing the fd.
Napi::Value RawWatchStop(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto it = Watches().find(fd);
  if (it == Watches().end()) return info.Env().Undefined();
  RawWatch* w = it->second;
  Watches().erase(it);
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) { delete static_cast<RawWatch*>(h->data); });
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  exports.Set("netlinkOpen", Napi::Function::New(env, NetlinkOpen));
  exports.Set("netlinkSend", Napi::Function::New(env, NetlinkSend));
  exports.Set("netlinkRecv", Napi::Function::New(env, NetlinkRecv));
  exports.Set("rawOpen", Napi::Function::New(env, RawOpen));
  exports.Set("rawRecv", Napi::Function::New(env, RawRecv));
  exports.Set("rawSend", Napi::Function::New(env, RawSend));
  exports.Set("rawWatch", Napi::Function::New(env, RawWatchStart));
  exports.Set("rawUnwatch", Napi::Function::New(env, RawWatchStop));
  exports.Set("close", Napi::Function::New(env, CloseFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(tswg_kernel, Init)
