// The JavaScript class `Tun`: one open TUN interface, its reader thread and its writes.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "js_delivery.h"
#include "packet_batch.h"
#include "shared_fd.h"
#include "tun_reader.h"
#include "vnet.h"

namespace tswg {

class TunDevice;

// Delivers a batch on the JavaScript thread: callback(data, sizes, null) with the packets
// back to back in `data`, or callback(null, null, code) once when reading stopped on an error.
void DeliverBatch(Napi::Env env, Napi::Function callback, std::nullptr_t* context,
                  PacketBatch* batch);

using BatchFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, PacketBatch, DeliverBatch>;

class TunDevice : public Napi::ObjectWrap<TunDevice> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new Tun(name: string, netnsPath: string | null, offload?: boolean)
  // new Tun(fd: number, name: string, mtu: number): adopts a packet descriptor that is not a
  // TUN (see AdoptPacketFd).
  explicit TunDevice(const Napi::CallbackInfo& info);
  ~TunDevice() override;

  // For the native data path: the descriptor (null once closed), whether packets carry a
  // virtio-net header, and the reader to install a handler on (null before start()).
  SharedFdPtr fd() const { return closed_ ? nullptr : tun_fd_; }
  bool vnet() const { return vnet_; }
  unsigned offloads() const { return offloads_; }
  TunReader* reader() { return closed_ ? nullptr : reader_.get(); }

 private:
  // start(callback, batchSize, maxPending): starts the reader thread. Once only.
  Napi::Value Start(const Napi::CallbackInfo& info);
  // ack(): the JavaScript side consumed one delivered batch.
  Napi::Value Ack(const Napi::CallbackInfo& info);
  // write(packets: Uint8Array[]): number of packets dropped.
  Napi::Value Write(const Napi::CallbackInfo& info);
  // ref()/unref(): whether delivering batches keeps the event loop alive.
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value GetMtu(const Napi::CallbackInfo& info);
  Napi::Value SetMtu(const Napi::CallbackInfo& info);
  Napi::Value GetFlags(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  // offloads(): { vnetHdr: boolean, flags: number } — what TUNSETOFFLOAD accepted.
  Napi::Value Offloads(const Napi::CallbackInfo& info);
  // setPacketSink(sink): packets the native data plane writes to this descriptor go to the
  // network stack's sink by a call instead (packet_sink.h). True if taken; false if `sink` is
  // not a sink, this is not a packet descriptor, or one is set already.
  Napi::Value SetPacketSink(const Napi::CallbackInfo& info);

  // A plain packet descriptor (one IP packet per read/write, non-blocking, e.g. a
  // SOCK_SEQPACKET socketpair end of the userspace network stack): no virtio-net header, no
  // offloads, no interface; the MTU is what the owner says and the link is up while open.
  void AdoptPacketFd(const Napi::CallbackInfo& info);

  // Stops the thread, releases the thread-safe function and closes the descriptors.
  // Idempotent; runs from close(), garbage collection or environment teardown.
  void Shutdown();
  // Current interface name (follows renames), falling back to the last one known.
  const std::string& CurrentName();

  napi_env env_;
  SharedFdPtr tun_fd_;
  int ctl_fd_ = -1;
  bool vnet_ = false;
  unsigned offloads_ = 0;
  std::unique_ptr<TunWriter> writer_;
  TunWriteStats write_stats_;
  std::string name_;
  std::unique_ptr<TunReader> reader_;
  JsDelivery<BatchFunction> deliver_;
  TeardownHook teardown_;
  bool closed_ = false;
  // Set for an adopted packet descriptor (AdoptPacketFd).
  bool packet_fd_ = false;
  int packet_mtu_ = 0;
};

}  // namespace tswg
