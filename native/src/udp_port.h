// The JavaScript class `Udp`: a pair of native UDP sockets (see udp_socket.h) with a receive
// thread. Received datagrams go to JavaScript in batches, after a handler (the native data
// path), when one is installed, has taken the ones it deals with itself.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "js_delivery.h"
#include "packet_batch.h"
#include "reader_thread.h"
#include "udp_socket.h"

namespace tswg {

// One received datagram, pointing into the receive thread's buffers: valid only during the
// handler call. The handler may modify the bytes in place (decrypt them).
struct DatagramRef {
  uint8_t* data;
  uint32_t len;
  const SockAddr* from;
};

class DatagramHandler {
 public:
  virtual ~DatagramHandler() = default;
  // Called on the receive thread. Appends the datagrams it does not deal with to `rest`
  // (null when nothing can be passed on: those are dropped). Returns how many it dealt with.
  virtual size_t HandleDatagrams(std::vector<DatagramRef>& datagrams, std::vector<DatagramRef>* rest) = 0;
};

// Datagrams on their way to JavaScript: bytes back to back, and 24 address bytes each.
struct DatagramBatch {
  PacketBatch packets;
  std::vector<uint8_t> addrs;
  int error = 0;
};

class UdpReceiver : public ReaderThread<DatagramHandler> {
 public:
  using Sink = std::function<bool(DatagramBatch*)>;
  UdpReceiver(std::shared_ptr<UdpSockets> sockets, int max_pending, Sink sink);
  ~UdpReceiver() override;
  // Starts the thread; returns 0 or an errno value.
  int Start();

  uint64_t passed_dropped() const { return passed_dropped_.load(std::memory_order_relaxed); }
  uint64_t handled() const { return handled_.load(std::memory_order_relaxed); }

 private:
  void Run() override;
  // One recvmmsg on `fd`; returns the number of messages, 0 when none, -1 on error.
  int ReceiveOnce(int fd);
  void Dispatch();

  std::shared_ptr<UdpSockets> sockets_;
  Sink sink_;
  std::atomic<uint64_t> passed_dropped_{0};
  std::atomic<uint64_t> handled_{0};

  // Receive buffers, allocated once.
  std::vector<uint8_t> buffers_;
  std::vector<SockAddr> names_;
  std::vector<uint8_t> control_;
  std::vector<DatagramRef> refs_;
  std::vector<DatagramRef> rest_;

  // Handshake messages that carry a mac2, kept while JavaScript has no credit left instead of
  // being dropped with the rest: they go first in the next batch (see HoldHandshake).
  struct HeldDatagram {
    std::vector<uint8_t> data;
    uint8_t addr[24];
  };
  bool HoldHandshake(const DatagramRef& d);
  std::vector<HeldDatagram> held_;
};

void DeliverDatagrams(Napi::Env env, Napi::Function callback, std::nullptr_t* context, DatagramBatch* batch);
using DatagramFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, DatagramBatch, DeliverDatagrams>;

class UdpPort : public Napi::ObjectWrap<UdpPort> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new Udp({ port, ipv4, ipv6, address4, address6, bufferBytes })
  explicit UdpPort(const Napi::CallbackInfo& info);
  ~UdpPort() override;

  // For the native data path: the sockets (null once closed) and the receiver (null before start()).
  std::shared_ptr<UdpSockets> sockets() const { return closed_ ? nullptr : sockets_; }
  UdpReceiver* receiver() { return closed_ ? nullptr : receiver_.get(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Ack(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value SetMark(const Napi::CallbackInfo& info);
  Napi::Value SetPathMtu(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Port(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);

  void Shutdown();

  napi_env env_;
  std::shared_ptr<UdpSockets> sockets_;
  std::unique_ptr<UdpReceiver> receiver_;
  JsDelivery<DatagramFunction> deliver_;
  TeardownHook teardown_;
  bool closed_ = false;
  uint64_t handled_ = 0;
  uint64_t passed_dropped_ = 0;
};

}  // namespace tswg
