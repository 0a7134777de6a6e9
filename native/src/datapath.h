// The native data path: per-packet WireGuard work off the JavaScript thread.
//
// It installs itself as the handler of a TUN reader and of a UDP receiver. On the TUN
// reader's thread: route each packet to a peer (AllowedIPs), seal it with the peer's current
// keypair and send the results as UDP GSO trains. On the UDP receiver's thread: open transport
// messages, check the replay window and the inner source address, and write the packets to
// the TUN, joined per TCP flow. Everything else — handshakes, cookie replies, packets for
// peers without a usable session — is passed on to JavaScript, which keeps the protocol's
// control plane and mirrors into this object what the fast path needs: peers, keypairs with
// their counters, endpoints, AllowedIPs, MTU. What the timers need is pushed back through the
// event callback: a keypair confirmed by the first packet under it, and "packets moved" after
// a burst (once until activity() is read, which says what moved).
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "icmp_too_big.h"
#include "js_delivery.h"
#include "mss_clamp.h"
#include "aead.h"
#include "replay.h"
#include "route_table.h"
#include "shared_fd.h"
#include "tun_reader.h"
#include "udp_port.h"
#include "vnet.h"

namespace tswg {

struct NativePeer;

struct NativeKeypair {
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
  uint8_t send_key[kAeadKeyLen];
  uint8_t recv_key[kAeadKeyLen];
  std::atomic<uint64_t> send_counter{0};
  int64_t created_ns = 0;
  ReplayWindow replay;  // the receive thread's alone
  NativePeer* peer = nullptr;  // valid while the keypair is in the index (peers outlive their keypairs there)
  ~NativeKeypair();
};

struct NativePeer {
  uint32_t id = 0;
  // Slots, changed under the data path's exclusive lock.
  std::shared_ptr<NativeKeypair> current;
  std::shared_ptr<NativeKeypair> previous;
  std::shared_ptr<NativeKeypair> next;
  std::mutex endpoint_mu;
  SockAddr endpoint;  // len 0: none, or not one this data path can reach
  uint16_t channel = 0;  // non-zero: `endpoint` is a TURN server and datagrams go as this ChannelData channel
  std::atomic<bool> endpoint_changed{false};
  std::atomic<uint64_t> tx_bytes{0};
  std::atomic<uint64_t> rx_bytes{0};
  std::atomic<int64_t> last_sent_ns{0};
  std::atomic<int64_t> last_data_sent_ns{0};
  std::atomic<int64_t> last_recv_ns{0};
  std::atomic<int64_t> last_data_recv_ns{0};
  // What activity() reported last (JavaScript thread only).
  uint64_t reported_tx = 0;
  uint64_t reported_rx = 0;
  int64_t reported_sent_ns = 0;
  int64_t reported_data_sent_ns = 0;
  int64_t reported_recv_ns = 0;
  int64_t reported_data_recv_ns = 0;
};

// Events pushed to JavaScript, per burst of packets.
constexpr int kEventConfirmed = 1;  // a `next` keypair confirmed by the first packet received under it
constexpr int kEventActivity = 2;   // packets moved since activity() was last read

struct DataPathEvent {
  int type;  // kEventConfirmed or kEventActivity
  uint32_t peer_id;
  uint32_t local_index;
};

void DeliverDataPathEvent(Napi::Env env, Napi::Function callback, std::nullptr_t* context, DataPathEvent* event);
using EventFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, DataPathEvent, DeliverDataPathEvent>;

struct DataPathCounters {
  std::atomic<uint64_t> tx_packets{0};
  std::atomic<uint64_t> tx_trains{0};
  std::atomic<uint64_t> tx_passed{0};  // TUN packets left to JavaScript (no usable session)
  std::atomic<uint64_t> no_route{0};
  std::atomic<uint64_t> send_failed{0};
  std::atomic<uint64_t> rx_packets{0};
  std::atomic<uint64_t> rx_keepalives{0};
  std::atomic<uint64_t> rx_passed{0};  // datagrams left to JavaScript (handshakes, cookies)
  std::atomic<uint64_t> unknown_index{0};
  std::atomic<uint64_t> expired{0};
  std::atomic<uint64_t> decrypt_failed{0};
  std::atomic<uint64_t> replayed{0};
  std::atomic<uint64_t> bad_inner{0};
  std::atomic<uint64_t> source_rejected{0};
  std::atomic<uint64_t> crypto_errors{0};
  std::atomic<uint64_t> too_big{0};  // inner packets over the peer's path MTU, answered with ICMP (icmp_too_big.h)
  std::atomic<uint64_t> mss_clamped{0};  // TCP SYNs whose MSS option was lowered (mss_clamp.h)
  // Copied from the receive thread's TUN writer after each burst.
  std::atomic<uint64_t> tun_writes{0};
  std::atomic<uint64_t> tun_coalesced{0};
  std::atomic<uint64_t> tun_write_dropped{0};
};

class DataPathCore : public TunPacketHandler, public DatagramHandler {
 public:
  DataPathCore(SharedFdPtr tun_fd, bool vnet, unsigned offloads, uint64_t reject_after_messages,
               int64_t reject_after_time_ns, uint32_t mtu);
  ~DataPathCore() override;

  size_t HandleTunPackets(PacketBatch& packets, PacketBatch* rest) override;
  size_t HandleDatagrams(std::vector<DatagramRef>& datagrams, std::vector<DatagramRef>* rest) override;

  void SetEvents(EventFunction events) { events_ = events; has_events_ = true; }
  void CloseEvents();
  void SetUdp(std::shared_ptr<UdpSockets> udp);
  void SetMtu(uint32_t mtu) { mtu_.store(mtu, std::memory_order_relaxed); }
  void SetMssClamp(int32_t setting) { mss_clamp_.store(setting, std::memory_order_relaxed); }
  void RearmActivity() { activity_armed_.store(true, std::memory_order_release); }
  void Shutdown();

  // Configuration from JavaScript (its thread).
  std::shared_mutex mu;
  std::unordered_map<uint32_t, std::shared_ptr<NativePeer>> peers;      // under mu
  std::unordered_map<uint32_t, std::shared_ptr<NativeKeypair>> index;  // under mu
  RouteTable routes;                                                    // under mu
  DataPathCounters counters;
  const uint64_t reject_after_messages;
  const int64_t reject_after_time_ns;

 private:
  struct Train;
  void Emit(int type, uint32_t peer_id, uint32_t local_index);
  void PushActivity();
  // MSS clamp (mss_clamp.h): lowers a SYN's MSS to what the peer's path carries.
  void ClampSyn(uint8_t* pkt, size_t len, uint32_t inner_mtu, bool arriving);
  uint32_t PeerInnerMtu(NativePeer* peer);

  SharedFdPtr tun_fd_;
  const bool vnet_;
  std::atomic<uint32_t> mtu_;
  std::atomic<int32_t> mss_clamp_{kMssClampOff};
  std::atomic<bool> closed_{false};
  std::atomic<bool> activity_armed_{true};
  std::mutex udp_mu_;
  std::weak_ptr<UdpSockets> udp_;
  std::mutex events_mu_;
  EventFunction events_;
  bool has_events_ = false;

  // The send side (TUN reader thread).
  std::mutex send_mu_;
  ChaChaPoly send_aead_;
  TooBigResponder too_big_;  // path MTU: icmp_too_big.h
  std::vector<uint8_t> train_buf_;
  std::vector<Train> trains_;
  // The receive side (UDP receiver thread).
  std::mutex recv_mu_;
  ChaChaPoly recv_aead_;
  TunWriter writer_;
  TunWriteStats write_stats_;
  std::vector<std::pair<uint32_t, uint32_t>> confirm_;  // (peer id, local index)
};

class DataPath : public Napi::ObjectWrap<DataPath> {
 public:
  static Napi::Function Define(Napi::Env env);
  // new DataPath(tun: Tun, udp: Udp | null, { rejectAfterMessages, rejectAfterTimeMs, mtu }, onEvent)
  explicit DataPath(const Napi::CallbackInfo& info);
  ~DataPath() override;

 private:
  Napi::Value SetUdp(const Napi::CallbackInfo& info);
  Napi::Value AttachUdp(Napi::Env env, Napi::Value udp);
  Napi::Value SetPeer(const Napi::CallbackInfo& info);
  Napi::Value RemovePeer(const Napi::CallbackInfo& info);
  Napi::Value SetEndpoint(const Napi::CallbackInfo& info);
  Napi::Value Endpoint(const Napi::CallbackInfo& info);
  Napi::Value SetKeypairs(const Napi::CallbackInfo& info);
  Napi::Value SetAllowedIps(const Napi::CallbackInfo& info);
  Napi::Value Counter(const Napi::CallbackInfo& info);
  Napi::Value TakeCounter(const Napi::CallbackInfo& info);
  Napi::Value SetCounter(const Napi::CallbackInfo& info);
  Napi::Value SetMtu(const Napi::CallbackInfo& info);
  Napi::Value SetMssClamp(const Napi::CallbackInfo& info);
  Napi::Value Activity(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void Shutdown();
  NativeKeypair* FindKeypair(uint32_t local_index);

  napi_env env_;
  std::shared_ptr<DataPathCore> core_;
  Napi::ObjectReference tun_ref_;
  Napi::ObjectReference udp_ref_;
  std::shared_ptr<bool> events_alive_;
  bool closed_ = false;
  TeardownHook teardown_;
};

}  // namespace tswg
