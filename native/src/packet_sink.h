// A packet sink: how one addon hands IP packets to another by a function call. The userspace
// network stack (tswg_netstack) offers one for its input; the data plane (tswg_native) takes it
// for the Tun over the stack's packet socket, so decrypted packets go into lwIP on the data
// plane's own thread instead of through the socket and the stack's reader thread (a send, a
// receive and a thread hop per batch). The socket stays for everything else: lwIP's output,
// and packets JavaScript writes.
//
// The table crosses JavaScript once, as an external tagged with kPacketSinkTag; the two addons
// share nothing else. Plain C types only: they are separate shared objects.
#pragma once

#include <node_api.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

namespace tswg {

constexpr uint32_t kPacketSinkAbi = 1;
// Marks the external as a PacketSink (napi_check_object_type_tag).
constexpr napi_type_tag kPacketSinkTag = {0x7473776770736e6bULL, 0x0000000100000001ULL};

struct PacketSink {
  uint32_t abi;  // kPacketSinkAbi
  void* ctx;
  // Takes `count` IP packets; they may be dropped (counted by the receiver), never kept past
  // the call. Safe from any thread; calls are serialised by the receiver.
  void (*deliver)(void* ctx, const struct iovec* packets, size_t count);
  // Reference counting of the table and its context: a holder retains it while it may call.
  void (*retain)(void* ctx);
  void (*release)(void* ctx);
};

// One holder's reference to a sink.
class PacketSinkRef {
 public:
  explicit PacketSinkRef(const PacketSink* sink) : sink_(sink) { sink_->retain(sink_->ctx); }
  ~PacketSinkRef() { sink_->release(sink_->ctx); }
  PacketSinkRef(const PacketSinkRef&) = delete;
  PacketSinkRef& operator=(const PacketSinkRef&) = delete;
  void Deliver(const struct iovec* packets, size_t count) const { sink_->deliver(sink_->ctx, packets, count); }

 private:
  const PacketSink* sink_;
};

// The sink named by a JavaScript value, or nullptr when it is not one (wrong tag or ABI).
inline const PacketSink* PacketSinkFromValue(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, value, &kPacketSinkTag, &tagged) != napi_ok || !tagged) return nullptr;
  void* data = nullptr;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == nullptr) return nullptr;
  const auto* sink = static_cast<const PacketSink*>(data);
  return sink->abi == kPacketSinkAbi ? sink : nullptr;
}

}  // namespace tswg
