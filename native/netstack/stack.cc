// The userspace network stack: Debian's lwIP (liblwip, NO_SYS=0 with core locking) behind
// one network interface whose "wire" is either a packet socket or JavaScript's Tun interface.
//
// 0. With openPacketFd() the wire is a SOCK_SEQPACKET socketpair: the other end goes (through
//    JavaScript, once) to the native data plane as its TUN, and packets move between the two
//    on native threads only — a reader thread here takes batches (recvmmsg) into lwIP under
//    one core lock, and lwIP's output is sent straight to the socket. Steps 1 and 2 then do
//    not apply; without it (the portable data plane) they do.
// 1. Inbound: JavaScript hands a batch of IP packets to input(); under the core lock each
//    becomes a pbuf and goes to ip_input. In router mode a SYN to a foreign destination is
//    held until JavaScript has dialed the destination (flowAccept / flowReject), and UDP to a
//    foreign destination is handed up as a router datagram without entering lwIP.
// 2. Outbound: lwIP's netif output copies each packet into one bounded queue; the first packet
//    after a drain wakes JavaScript (one thread-safe call), which takes the whole queue as one
//    Buffer plus sizes: packets never cross into JavaScript one by one.
// 3. Socket events (accept, connected, data, sent, end, error, UDP datagrams, echo replies)
//    queue the same way and are taken in one call.
// 4. Socket calls from JavaScript take the core lock and use lwIP's raw API directly; lwIP's
//    own tcpip thread runs the timers under the same lock.
#include "stack.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

// lwipopts.h declares the core-locking functions without C linkage of its own.
extern "C" {
#include "lwip/icmp.h"
#include "lwip/inet_chksum.h"
#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/raw.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"
#include "lwip/udp.h"
}
#include "data_blocks.h"
#include "packets.h"
#include "../src/packet_sink.h"
#include "../src/tcp_options.h"

namespace tswg_netstack {
namespace {

// lwIP is one per process; its tcpip thread is started once and never stopped.
std::once_flag g_lwip_once;
std::atomic<bool> g_stack_open{false};

void StartLwip() {
  std::call_once(g_lwip_once, [] {
    std::promise<void> ready;
    tcpip_init([](void* arg) { static_cast<std::promise<void>*>(arg)->set_value(); }, &ready);
    ready.get_future().wait();
  });
}

struct CoreLock {
  CoreLock() { LOCK_TCPIP_CORE(); }
  ~CoreLock() { UNLOCK_TCPIP_CORE(); }
};

enum EventType : uint8_t { kAccept, kConnected, kData, kEnd, kSent, kError, kUdp, kEcho, kFlow, kRouterUdp };
const char* const kEventNames[] = {"accept", "connected", "data", "end", "sent", "error", "udp", "echo", "flow", "routerUdp"};

struct Event {
  EventType type;
  uint32_t id = 0;
  uint32_t id2 = 0;
  int64_t num = 0;
  std::vector<uint8_t> data;
  DataBlock block;  // kData: the received bytes
  ip_addr_t addr{};
  uint16_t port = 0;
  ip_addr_t addr2{};
  uint16_t port2 = 0;
};

class Stack;

struct Conn {
  uint32_t id;
  Stack* stack;
  tcp_pcb* pcb;
  bool listener;
  // Received bytes handed towards the application and not yet taken by its reader, and the
  // part of them whose window lwIP has not been given back (see kReadAhead).
  uint32_t app_pending = 0;
  uint32_t withheld = 0;
  // Its SYN went out offering kWindowScale (an active open; see ScaleSyn).
  bool scale_offered = false;
};

struct UdpSock {
  uint32_t id;
  Stack* stack;
  udp_pcb* pcb;
};

// A TCP flow of the router mode waiting for JavaScript's dial.
struct PendingFlow {
  uint32_t id;
  std::string key;
  ParsedPacket parsed;
  std::vector<uint8_t> syn;
  bool accepted = false;
  uint32_t created_ms;
};

std::string KeyString(const FlowKey& k) {
  size_t alen = k.family == 4 ? 4 : 16;
  std::string s;
  s.reserve(2 * alen + 6);
  s.push_back(char(k.family));
  s.append(reinterpret_cast<const char*>(k.src), alen);
  s.append(reinterpret_cast<const char*>(k.dst), alen);
  s.push_back(char(k.sport >> 8));
  s.push_back(char(k.sport));
  s.push_back(char(k.dport >> 8));
  s.push_back(char(k.dport));
  return s;
}

void ToIpAddr(uint8_t family, const uint8_t* bytes, ip_addr_t* out) {
  if (family == 4) {
    uint32_t a;
    std::memcpy(&a, bytes, 4);
    ip_addr_set_ip4_u32_val(*out, a);
  } else {
    uint32_t w[4];
    std::memcpy(w, bytes, 16);
    IP_ADDR6(out, w[0], w[1], w[2], w[3]);
    ip6_addr_clear_zone(ip_2_ip6(out));
  }
}

std::string AddrString(const ip_addr_t& a) {
  char buf[IP6ADDR_STRLEN_MAX + 1];
  const char* s = ipaddr_ntoa_r(&a, buf, sizeof buf);
  return s == nullptr ? std::string() : std::string(s);
}

bool ParseAddr(const Napi::Value& v, ip_addr_t* out) {
  if (!v.IsString()) return false;
  std::string s = v.As<Napi::String>().Utf8Value();
  return ipaddr_aton(s.c_str(), out) == 1;
}

uint32_t NowMs() { return sys_now(); }

constexpr size_t kMaxQueuedPackets = 16384;
constexpr size_t kMaxQueuedBytes = 24u << 20;
constexpr size_t kMaxPendingFlows = 1024;
// Debian's build has no listen backlog (TCP_LISTEN_BACKLOG 0): half-open connections are capped here.
constexpr size_t kMaxHalfOpen = 1024;
constexpr uint32_t kPendingFlowTtlMs = 30000;
// Received runs up to this size reach JavaScript as a copy; larger ones as the block itself.
constexpr size_t kCopyBelow = 32u << 10;
// The window scale the stack announces in its SYN and SYN-ACK segments. Debian's lwIP is built
// with TCP_RCV_SCALE 1, which caps a connection's receive window at 0xFFFF << 1 ≈ 128 KiB, so
// one connection could carry only 128 KiB per round trip. lwIP writes that constant only into
// the option of SYN segments; every other segment's window is shifted by the connection's own
// rcv_scale. ScaleSyn rewrites the option on the way out and sets rcv_scale to match.
constexpr uint8_t kWindowScale = 7;
// Receive windows: up to kMaxWindow per connection, while all connections together stay within
// kWindowBudget (so each gets kWindowBudget / connections, at least kMinWindow, what scale 1
// allows). The window only ever grows to the cap: what was announced stays acceptable.
constexpr uint32_t kMaxWindow = 2u << 20;
constexpr uint32_t kMinWindow = uint32_t(0xFFFF) << 1;
constexpr uint64_t kWindowBudget = 64u << 20;
// The receive window is given back to lwIP as data arrives while less than kReadAhead of the
// connection (and less than kTotalReadAhead of all connections) waits for the application's
// reader; past it, only as the reader takes bytes. Opening it only after a trip through
// JavaScript would make that trip part of every round trip, while this bounds what is
// buffered all the same.
constexpr uint32_t kReadAhead = 1u << 20;
constexpr uint64_t kTotalReadAhead = 64u << 20;
// The packet socket: messages per recvmmsg, the room for each (an IP packet's largest size),
// and the socket buffers asked for each way (bounded by net.core.wmem_max without privileges).
constexpr int kRecvBatch = 64;
constexpr size_t kRecvRoom = 65536;
constexpr int kPacketSocketBuffer = 4 << 20;
constexpr size_t kSendBatch = 64;

// Gives `len` bytes of receive window back, like tcp_recved, which caps the window at the
// compiled-in TCP_WND (64 KiB in Debian's build). With window scaling negotiated the header can
// announce up to 0xFFFF << rcv_scale, so the window may grow to that, and to `cap`, here. It is
// never made smaller than it is: the peer may send what was announced.
void OpenWindow(tcp_pcb* pcb, uint32_t len, uint32_t cap) {
  uint32_t max = uint32_t(TCP_WND_MAX(pcb));
  if (pcb->flags & TF_WND_SCALE) max = std::min(cap, uint32_t(0xFFFF) << pcb->rcv_scale);
  if (pcb->rcv_wnd >= max) return;
  uint32_t wnd = pcb->rcv_wnd + len;
  if (wnd > max || wnd < pcb->rcv_wnd) wnd = max;
  pcb->rcv_wnd = wnd;
  if (tcp_update_rcv_ann_wnd(pcb) >= TCP_WND_UPDATE_THRESHOLD) {
    tcp_ack_now(pcb);
    tcp_output(pcb);  // deferred by lwIP when called from its own input
  }
}

// The windows a connection starts with beyond lwIP's own, once scaling is known to be on:
// the receive window as above, and the send buffer (TCP_SND_BUF, 64 KiB in Debian's build,
// which bounds the data in flight towards the peer) raised to what lwIP's compiled queue
// length (TCP_SND_QUEUELEN segments) can hold; lwIP keeps the surplus as it counts
// acknowledged bytes back in.
void WidenWindow(tcp_pcb* pcb, uint32_t cap) {
  if ((pcb->flags & TF_WND_SCALE) == 0) return;
  OpenWindow(pcb, cap, cap);
  uint32_t room = uint32_t(TCP_SND_QUEUELEN - 4) * pcb->mss;
  if (room > TCP_SND_BUF) pcb->snd_buf += room - TCP_SND_BUF;
}

class Stack : public Napi::ObjectWrap<Stack> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Stack",
                       {
                           InstanceMethod<&Stack::OpenPacketFd>("openPacketFd"),
                           InstanceMethod<&Stack::ClosePacketFdMethod>("closePacketFd"),
                           InstanceMethod<&Stack::Input>("input"),
                           InstanceMethod<&Stack::TakePackets>("takePackets"),
                           InstanceMethod<&Stack::TakeEvents>("takeEvents"),
                           InstanceMethod<&Stack::TcpConnect>("tcpConnect"),
                           InstanceMethod<&Stack::TcpListen>("tcpListen"),
                           InstanceMethod<&Stack::TcpWrite>("tcpWrite"),
                           InstanceMethod<&Stack::TcpRecved>("tcpRecved"),
                           InstanceMethod<&Stack::TcpShutdown>("tcpShutdown"),
                           InstanceMethod<&Stack::TcpClose>("tcpClose"),
                           InstanceMethod<&Stack::TcpKeepAlive>("tcpKeepAlive"),
                           InstanceMethod<&Stack::UdpBind>("udpBind"),
                           InstanceMethod<&Stack::UdpSend>("udpSend"),
                           InstanceMethod<&Stack::UdpClose>("udpClose"),
                           InstanceMethod<&Stack::Ping>("ping"),
                           InstanceMethod<&Stack::FlowAccept>("flowAccept"),
                           InstanceMethod<&Stack::FlowReject>("flowReject"),
                           InstanceMethod<&Stack::RouterUdpSend>("routerUdpSend"),
                           InstanceMethod<&Stack::Stats>("stats"),
                           InstanceMethod<&Stack::PacketSinkMethod>("packetSink"),
                           InstanceMethod<&Stack::Ref>("ref"),
                           InstanceMethod<&Stack::Unref>("unref"),
                           InstanceMethod<&Stack::Close>("close"),
                       });
  }

  // new Stack({ mtu, ipv4: [addr, prefix] | null, ipv6: [addr...], router }, onWake)
  explicit Stack(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Stack>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "Stack(options, onWake)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    int mtu = o.Get("mtu").IsNumber() ? o.Get("mtu").As<Napi::Number>().Int32Value() : 1420;
    router_ = o.Get("router").ToBoolean().Value();
    ip4_addr_t addr4, mask4, gw4;
    ip4_addr_set_zero(&addr4);
    ip4_addr_set_zero(&mask4);
    ip4_addr_set_zero(&gw4);
    Napi::Value v4 = o.Get("ipv4");
    if (v4.IsArray()) {
      Napi::Array a = v4.As<Napi::Array>();
      std::string s = a.Get(0u).As<Napi::String>().Utf8Value();
      int prefix = a.Get(1u).As<Napi::Number>().Int32Value();
      if (ip4addr_aton(s.c_str(), &addr4) != 1 || prefix < 0 || prefix > 32) {
        Napi::TypeError::New(env, "bad IPv4 address").ThrowAsJavaScriptException();
        return;
      }
      ip4_addr_set_u32(&mask4, prefix == 0 ? 0 : lwip_htonl(0xffffffffu << (32 - prefix)));
    }
    std::vector<ip6_addr_t> addrs6;
    Napi::Value v6 = o.Get("ipv6");
    if (v6.IsArray()) {
      Napi::Array a = v6.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length() && i + 1 < LWIP_IPV6_NUM_ADDRESSES; i++) {
        ip6_addr_t x;
        std::string s = a.Get(i).As<Napi::String>().Utf8Value();
        if (ip6addr_aton(s.c_str(), &x) != 1) {
          Napi::TypeError::New(env, "bad IPv6 address").ThrowAsJavaScriptException();
          return;
        }
        ip6_addr_clear_zone(&x);
        addrs6.push_back(x);
      }
    }
    if (g_stack_open.exchange(true)) {
      Napi::Error::New(env, "only one network stack can run in a process").ThrowAsJavaScriptException();
      return;
    }
    owns_global_ = true;
    StartLwip();
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "tswg-netstack", 0, 1);
    tsfn_.Unref(env);
    {
      CoreLock lock;
      netif_add(&netif_, &addr4, &mask4, &gw4, this, &Stack::NetifInit, ip_input);
      netif_.mtu = uint16_t(mtu);
#if LWIP_IPV6
      netif_.mtu6 = uint16_t(mtu);
#endif
      for (size_t i = 0; i < addrs6.size(); i++) {
        ip_addr_copy_from_ip6(netif_.ip6_addr[i], addrs6[i]);
        netif_ip6_addr_set_state(&netif_, s8_t(i), IP6_ADDR_PREFERRED);
      }
      netif_set_default(&netif_);
      netif_set_link_up(&netif_);
      netif_set_up(&netif_);
    }
    open_ = true;
  }

  ~Stack() override { Shutdown(); }

 private:
  static err_t NetifInit(struct netif* n) {
    n->name[0] = 'w';
    n->name[1] = 'g';
    n->output = &Stack::Output4;
    n->output_ip6 = &Stack::Output6;
    n->flags = NETIF_FLAG_LINK_UP;
    return ERR_OK;
  }

  static err_t Output4(struct netif* n, struct pbuf* p, const ip4_addr_t*) {
    static_cast<Stack*>(n->state)->QueuePacket(p);
    return ERR_OK;
  }

  static err_t Output6(struct netif* n, struct pbuf* p, const ip6_addr_t*) {
    static_cast<Stack*>(n->state)->QueuePacket(p);
    return ERR_OK;
  }

  void QueuePacket(struct pbuf* p) {
    ScaleSyn(p);
    // Output runs under the core lock, which is what guards pkt_fd_.
    if (pkt_fd_ >= 0) {
      SendPacket(p);
      return;
    }
    {
      std::lock_guard<std::mutex> g(out_mu_);
      if (out_sizes_.size() >= kMaxQueuedPackets || out_data_.size() + p->tot_len > kMaxQueuedBytes) {
        out_dropped_++;
        return;
      }
      size_t off = out_data_.size();
      out_data_.resize(off + p->tot_len);
      pbuf_copy_partial(p, out_data_.data() + off, p->tot_len, 0);
      out_sizes_.push_back(p->tot_len);
      packets_out_++;
    }
    Wake();
  }

  // An outgoing SYN or SYN-ACK offers kWindowScale instead of lwIP's compiled-in shift (see
  // kWindowScale). The segment is rewritten in its pbuf; lwIP rebuilds the options and the
  // checksum whenever it sends the segment again, and it passes here again. A SYN-ACK goes
  // out only when the peer's SYN offered scaling, so its connection (SYN_RCVD, already
  // registered) shifts by kWindowScale from now on: its SYN-ACK's own window is never
  // scaled. An active open's SYN is only marked: the SYN-ACK, if it offers scaling, makes
  // lwIP set rcv_scale from its constant, and OnConnected raises it before lwIP answers.
  void ScaleSyn(struct pbuf* p) {
    uint8_t* d = static_cast<uint8_t*>(p->payload);
    if (!IsTcpSegment(d, p->len, tswg::kTcpSyn, tswg::kTcpSyn)) return;
    ParsedPacket pp;
    if (!ParseTransport(d, p->len, &pp) || pp.key.proto != 6 || pp.fragment) return;
    tcp_pcb* pcb = FindPcb(pp.key.family, pp.key.src, pp.key.sport, pp.key.dst, pp.key.dport);
    if (pcb == nullptr) return;
    if (pp.tcp_flags & 0x10) {
      if (pcb->state != SYN_RCVD || (pcb->flags & TF_WND_SCALE) == 0) return;
      if (SetWindowScale(d, pp, kWindowScale)) {
        pcb->rcv_scale = kWindowScale;
        counters_.syn_scaled++;
      }
      return;
    }
    Conn* c = static_cast<Conn*>(pcb->callback_arg);
    if (pcb->state != SYN_SENT || c == nullptr || c->listener) return;
    if (SetWindowScale(d, pp, kWindowScale)) {
      c->scale_offered = true;
      counters_.syn_scaled++;
    }
  }

  // The connection with this local and remote end, if lwIP has one (active or half-open).
  static tcp_pcb* FindPcb(uint8_t family, const uint8_t* local, uint16_t lport, const uint8_t* remote, uint16_t rport) {
    ip_addr_t l, r;
    ToIpAddr(family, local, &l);
    ToIpAddr(family, remote, &r);
    for (tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) {
      if (p->local_port == lport && p->remote_port == rport && ip_addr_cmp(&p->local_ip, &l) && ip_addr_cmp(&p->remote_ip, &r))
        return p;
    }
    return nullptr;
  }

  // The receive window a connection may have now (see kWindowBudget).
  uint32_t WindowCap() const {
    uint64_t cap = kWindowBudget / std::max<size_t>(1, conns_.size());
    return uint32_t(std::max<uint64_t>(kMinWindow, std::min<uint64_t>(kMaxWindow, cap)));
  }

  void QueueEvent(Event&& e) {
    {
      std::lock_guard<std::mutex> g(ev_mu_);
      // Runs of sent events for one connection become one (data: see QueueData).
      if (!events_.empty() && e.type == kSent) {
        Event& last = events_.back();
        if (last.type == kSent && last.id == e.id) {
          last.num += e.num;
          return;
        }
      }
      events_.push_back(std::move(e));
    }
    Wake();
  }

  void Wake() {
    if (!wake_pending_.exchange(true)) {
      tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function cb) {
        wake_pending_.store(false);
        // A call still queued when the environment is torn down comes without one: JavaScript
        // can no longer be called then (trying is a fatal error).
        if (static_cast<napi_env>(env) == nullptr || cb.IsEmpty() || !open_) return;
        // The C call: during teardown it fails with a status instead of a fatal throw; an
        // exception of the callback itself stays pending and is reported as uncaught.
        napi_value ignored;
        napi_call_function(env, env.Undefined(), cb, 0, nullptr, &ignored);
      });
    }
  }

  // ---- the packet socket ----

  // One packet, one message. While a batch is open (the reader's input, a write from
  // JavaScript) packets are collected and go out together at its end (sendmmsg); otherwise at
  // once, gathered from the pbuf chain without a copy. A full socket (EAGAIN) drops them like a
  // full device queue: TCP sends them again.
  void SendPacket(struct pbuf* p) {
    if (out_batching_) {
      if (out_batch_sizes_.size() == kSendBatch) FlushOutBatch();
      size_t off = out_batch_.size();
      out_batch_.resize(off + p->tot_len);
      pbuf_copy_partial(p, out_batch_.data() + off, p->tot_len, 0);
      if (SupersedeAck(off, p->tot_len)) {
        out_batch_.resize(off);
        return;
      }
      out_batch_sizes_.push_back(p->tot_len);
      return;
    }
    struct iovec iov[16];
    int n = 0;
    for (struct pbuf* q = p; q != nullptr && n < 16; q = q->next) {
      if (q->len == 0) continue;
      iov[n].iov_base = q->payload;
      iov[n].iov_len = q->len;
      n++;
    }
    struct msghdr m {};
    m.msg_iov = iov;
    m.msg_iovlen = size_t(n);
    ssize_t r;
    do {
      r = sendmsg(pkt_fd_, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    std::lock_guard<std::mutex> g(out_mu_);
    if (r < 0)
      out_dropped_++;
    else
      packets_out_++;
  }

  // The TCP connection a packet of the batch belongs to, and what its last packet there was.
  struct BatchFlow {
    uint8_t key[36];  // source and destination address, then the ports
    size_t key_len;
    size_t offset;    // of the connection's last packet in out_batch_
    size_t len;
    bool pure_ack;    // that packet is a pure ACK that no duplicate followed
    uint32_t seq, ack;
    uint16_t wnd;
  };

  // One input batch makes lwIP acknowledge every second segment; each of those ACKs would
  // cross the socket, be encrypted and sent. A pure ACK (no data, no other flag) that is
  // its connection's last packet in the batch is replaced by a later pure ACK of the same
  // connection that acknowledges strictly more with the same sequence number and no smaller
  // window: the later one carries all it said. Duplicate ACKs (the same acknowledgement
  // number, which tell the sender of a loss) are never replaced, nor do they replace. The
  // packet was appended at `off`; true when it went over the earlier one instead.
  bool SupersedeAck(size_t off, size_t len) {
    const uint8_t* d = out_batch_.data() + off;
    size_t l4 = tswg::TcpOffset(d, len);
    if (l4 == 0) return false;
    size_t alen = (d[0] >> 4) == 4 ? 4 : 16;
    const uint8_t* t = d + l4;
    size_t doff = size_t(t[12] >> 4) * 4;
    BatchFlow f;
    f.key_len = 2 * alen + 4;
    std::memcpy(f.key, d + (alen == 4 ? 12 : 8), 2 * alen);
    std::memcpy(f.key + 2 * alen, t, 4);
    f.offset = off;
    f.len = len;
    f.pure_ack = t[13] == 0x10 && len == l4 + doff;
    f.seq = tswg::LoadBe32(t + 4);
    f.ack = tswg::LoadBe32(t + 8);
    f.wnd = tswg::LoadBe16(t + 14);
    BatchFlow* prev = nullptr;
    for (BatchFlow& b : batch_flows_) {
      if (b.key_len == f.key_len && std::memcmp(b.key, f.key, f.key_len) == 0) {
        prev = &b;
        break;
      }
    }
    if (prev == nullptr) {
      batch_flows_.push_back(f);
      return false;
    }
    if (f.pure_ack && prev->pure_ack && prev->len == len && prev->seq == f.seq && int32_t(f.ack - prev->ack) > 0 &&
        f.wnd >= prev->wnd) {
      std::memcpy(out_batch_.data() + prev->offset, d, len);
      prev->ack = f.ack;
      prev->wnd = f.wnd;
      counters_.acks_superseded++;
      return true;
    }
    if (f.pure_ack && f.ack == prev->ack) f.pure_ack = false;  // a duplicate ACK stays as it is
    *prev = f;
    return false;
  }


  // Opens a batch of output (under the core lock); EndOutBatch sends it.
  void BeginOutBatch() { out_batching_ = pkt_fd_ >= 0; }
  void EndOutBatch() {
    if (!out_batching_) return;
    FlushOutBatch();
    out_batching_ = false;
  }

  void FlushOutBatch() {
    struct mmsghdr msgs[kSendBatch];
    struct iovec iov[kSendBatch];
    size_t n = out_batch_sizes_.size(), off = 0, i = 0;
    for (size_t k = 0; k < n; k++) {
      iov[k].iov_base = out_batch_.data() + off;
      iov[k].iov_len = out_batch_sizes_[k];
      off += out_batch_sizes_[k];
      std::memset(&msgs[k], 0, sizeof msgs[k]);
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    uint64_t sent_total = 0, dropped = 0;
    while (i < n) {
      int sent = sendmmsg(pkt_fd_, msgs + i, unsigned(n - i), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent > 0) {
        i += size_t(sent);
        sent_total += uint64_t(sent);
        continue;
      }
      // Full (EAGAIN): the rest is dropped; another error: the one packet.
      size_t d = (sent < 0 && errno != EAGAIN) ? 1 : n - i;
      dropped += d;
      i += d;
    }
    out_batch_.clear();
    out_batch_sizes_.clear();
    batch_flows_.clear();
    std::lock_guard<std::mutex> g(out_mu_);
    packets_out_ += sent_total;
    out_dropped_ += dropped;
  }

  // openPacketFd() → the descriptor of the socketpair's other end, for the data plane's Tun
  // (which then owns it). Packets no longer go through takePackets()/input().
  Napi::Value OpenPacketFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return ThrowErr(env, ERR_CLSD, "openPacketFd");
    if (pkt_fd_ >= 0) {
      Napi::Error::New(env, "openPacketFd: the packet socket is already open").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return ThrowErrno(env, "socketpair");
    int stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop < 0) {
      int e = errno;
      close(sv[0]);
      close(sv[1]);
      errno = e;
      return ThrowErrno(env, "eventfd");
    }
    for (int fd : sv) {
      int size = kPacketSocketBuffer;
      // The privileged form ignores net.core.[rw]mem_max; without privileges the plain one is capped.
      if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
      if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    stop_fd_ = stop;
    {
      CoreLock lock;
      pkt_fd_ = sv[0];
    }
    reader_ = std::thread([this] { ReadPackets(); });
    return Napi::Number::New(env, sv[1]);
  }

  // The reader thread: every message waiting is taken (up to kRecvBatch per call) and fed to
  // lwIP under one core lock; it ends when stopped or when the other end is closed.
  void ReadPackets() {
    std::unique_ptr<uint8_t[]> room(new uint8_t[kRecvBatch * kRecvRoom]);
    struct mmsghdr msgs[kRecvBatch];
    struct iovec iov[kRecvBatch];
    const int fd = pkt_fd_;
    for (;;) {
      struct pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;
      bool peer_gone = false;
      for (;;) {
        for (int i = 0; i < kRecvBatch; i++) {
          iov[i].iov_base = room.get() + size_t(i) * kRecvRoom;
          iov[i].iov_len = kRecvRoom;
          std::memset(&msgs[i], 0, sizeof msgs[i]);
          msgs[i].msg_hdr.msg_iov = &iov[i];
          msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, kRecvBatch, MSG_DONTWAIT, nullptr);
        if (n < 0) {
          if (errno == EINTR) continue;
          peer_gone = errno != EAGAIN;
          break;
        }
        {
          CoreLock lock;
          BeginOutBatch();
          for (int i = 0; i < n; i++) {
            size_t len = msgs[i].msg_len;
            if (len == 0) {
              peer_gone = true;  // end of file: the data plane closed its end
              break;
            }
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
              counters_.input_dropped++;
              continue;
            }
            InputOne(static_cast<const uint8_t*>(iov[i].iov_base), len);
          }
          EndOutBatch();
        }
        if (peer_gone || n < kRecvBatch) break;
      }
      if (peer_gone || (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) return;
    }
  }

  // Stops and joins the reader thread. Idempotent.
  void StopPacketReader() {
    if (stop_fd_ < 0) return;
    uint64_t one = 1;
    ssize_t ignored = write(stop_fd_, &one, sizeof one);
    (void)ignored;
    if (reader_.joinable()) reader_.join();
  }

  // Stops the reader and closes this end; the data plane's reads then end.
  void ClosePacketFd() {
    DetachSink();
    if (stop_fd_ < 0) return;
    StopPacketReader();
    int fd;
    {
      CoreLock lock;
      fd = pkt_fd_;
      pkt_fd_ = -1;
    }
    if (fd >= 0) close(fd);
    close(stop_fd_);
    stop_fd_ = -1;
  }

  Napi::Value ClosePacketFdMethod(const Napi::CallbackInfo& info) {
    ClosePacketFd();
    return info.Env().Undefined();
  }

  // ---- the packet sink (../src/packet_sink.h) ----

  // What the data plane's Tun holds: the function table and the stack it feeds, cleared (under
  // `mu`, which every delivery holds) when the stack stops taking packets this way.
  struct SinkState {
    tswg::PacketSink table;
    std::atomic<int> refs{1};  // the stack's own
    std::mutex mu;
    Stack* stack;
  };

  static void SinkDeliver(void* ctx, const struct iovec* packets, size_t count) {
    auto* st = static_cast<SinkState*>(ctx);
    std::lock_guard<std::mutex> g(st->mu);
    if (st->stack != nullptr) st->stack->InputBatch(packets, count);
  }
  static void SinkRetain(void* ctx) { static_cast<SinkState*>(ctx)->refs.fetch_add(1, std::memory_order_relaxed); }
  static void SinkRelease(void* ctx) {
    auto* st = static_cast<SinkState*>(ctx);
    if (st->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete st;
  }

  // packetSink(): the stack's input as a sink for the native data plane, while the packet
  // socket is open (null otherwise). Its packets enter lwIP on the caller's thread.
  Napi::Value PacketSinkMethod(const Napi::CallbackInfo& info) {
    napi_env env = info.Env();
    if (!open_ || pkt_fd_ < 0) return info.Env().Null();
    if (sink_ == nullptr) {
      sink_ = new SinkState();
      sink_->table = {tswg::kPacketSinkAbi, sink_, &Stack::SinkDeliver, &Stack::SinkRetain, &Stack::SinkRelease};
      sink_->stack = this;
    }
    napi_value ext;
    SinkRetain(sink_);
    if (napi_create_external(env, &sink_->table, [](napi_env, void* data, void*) {
          SinkRelease(static_cast<tswg::PacketSink*>(data)->ctx);
        }, nullptr, &ext) != napi_ok) {
      SinkRelease(sink_);
      return Napi::Value();
    }
    if (napi_type_tag_object(env, ext, &tswg::kPacketSinkTag) != napi_ok) return Napi::Value();
    return Napi::Value(env, ext);
  }

  // No delivery is under way once this returns, and none will reach this stack again.
  void DetachSink() {
    if (sink_ == nullptr) return;
    {
      std::lock_guard<std::mutex> g(sink_->mu);
      sink_->stack = nullptr;
    }
    SinkRelease(sink_);
    sink_ = nullptr;
  }

  // A batch from the sink: as the reader's, under one core lock, lwIP's output sent together.
  void InputBatch(const struct iovec* packets, size_t count) {
    CoreLock lock;
    counters_.packets_direct += count;
    BeginOutBatch();
    for (size_t i = 0; i < count; i++) InputOne(static_cast<const uint8_t*>(packets[i].iov_base), packets[i].iov_len);
    EndOutBatch();
  }

  Napi::Value ThrowErrno(Napi::Env env, const char* what) {
    Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + std::strerror(errno));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // ---- packets ----

  Napi::Value Input(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!open_) return Napi::Number::New(env, 0);
    if (!info[0].IsArray()) {
      Napi::TypeError::New(env, "input(packets)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array arr = info[0].As<Napi::Array>();
    uint32_t n = arr.Length();
    CoreLock lock;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsTypedArray()) continue;
      Napi::Uint8Array b = v.As<Napi::Uint8Array>();
      InputOne(b.Data(), b.ByteLength());
    }
    return Napi::Number::New(env, n);
  }

  void InputOne(const uint8_t* data, size_t len) {
    if (len == 0 || len > 0xffff) {
      counters_.input_dropped++;
      return;
    }
    counters_.packets_in++;
    if (router_ && !IsLocal(data, len)) {
      RouterInput(data, len);
      return;
    }
    if (IsTcpSegment(data, len, 0x12, 0x02) && HalfOpen() >= kMaxHalfOpen) {
      counters_.syn_dropped++;
      return;
    }
    Deliver(data, len);
  }

  // Whether the packet is a TCP segment whose flags, masked, are `flags` (0x12, 0x02: a SYN
  // without ACK).
  static bool IsTcpSegment(const uint8_t* d, size_t len, uint8_t mask, uint8_t flags) {
    size_t off = tswg::TcpOffset(d, len);
    return off != 0 && (d[off + 13] & mask) == flags;
  }

  // Connections in SYN_RCVD (a SYN answered, the handshake not completed).
  static size_t HalfOpen() {
    size_t n = 0;
    for (tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) n += p->state == SYN_RCVD;
    return n;
  }

  void Deliver(const uint8_t* data, size_t len) {
    struct pbuf* p = pbuf_alloc(PBUF_RAW, uint16_t(len), PBUF_RAM);
    if (p == nullptr) {
      counters_.input_dropped++;
      return;
    }
    std::memcpy(p->payload, data, len);
    if (netif_.input(p, &netif_) != ERR_OK) pbuf_free(p);
  }

  // Whether the packet's destination is one of the interface's own addresses.
  bool IsLocal(const uint8_t* d, size_t len) {
    uint8_t v = d[0] >> 4;
    if (v == 4 && len >= 20) {
      uint32_t dst;
      std::memcpy(&dst, d + 16, 4);
      return !ip4_addr_isany_val(*netif_ip4_addr(&netif_)) && dst == ip4_addr_get_u32(netif_ip4_addr(&netif_));
    }
    if (v == 6 && len >= 40) {
      for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES - 1; i++) {
        if (!ip6_addr_isvalid(netif_ip6_addr_state(&netif_, i))) continue;
        if (std::memcmp(netif_ip6_addr(&netif_, i)->addr, d + 24, 16) == 0) return true;
      }
      return false;
    }
    return true;  // not IP: lwIP drops it
  }

  // Lets lwIP take a packet for a foreign address: the interface answers to that address
  // for the duration of this one input. The connection lwIP creates keeps the address as its
  // local address, so replies leave with the original destination as their source.
  void DeliverAs(const ParsedPacket& pp, const uint8_t* data, size_t len) {
    if (pp.key.family == 4) {
      ip_addr_t saved = netif_.ip_addr;
      ip_addr_t saved_mask = netif_.netmask;
      ToIpAddr(4, pp.key.dst, &netif_.ip_addr);
      ip_addr_set_ip4_u32_val(netif_.netmask, 0xffffffffu);
      Deliver(data, len);
      netif_.ip_addr = saved;
      netif_.netmask = saved_mask;
    } else {
      const int slot = LWIP_IPV6_NUM_ADDRESSES - 1;
      ToIpAddr(6, pp.key.dst, &netif_.ip6_addr[slot]);
      netif_.ip6_addr_state[slot] = IP6_ADDR_PREFERRED;
      Deliver(data, len);
      netif_.ip6_addr_state[slot] = IP6_ADDR_INVALID;
    }
  }

  void RouterInput(const uint8_t* data, size_t len) {
    ParsedPacket pp;
    if (!ParseTransport(data, len, &pp) || pp.fragment) {
      counters_.router_dropped++;
      return;
    }
    if (pp.key.proto == 17) {
      Event e{kRouterUdp};
      ToIpAddr(pp.key.family, pp.key.src, &e.addr);
      e.port = pp.key.sport;
      ToIpAddr(pp.key.family, pp.key.dst, &e.addr2);
      e.port2 = pp.key.dport;
      const uint8_t* payload = data + pp.l4_offset + 8;
      e.data.assign(payload, payload + (pp.l4_length - 8));
      counters_.router_udp_in++;
      QueueEvent(std::move(e));
      return;
    }
    std::string key = KeyString(pp.key);
    auto it = flows_by_key_.find(key);
    bool syn = (pp.tcp_flags & 0x12) == 0x02;  // SYN without ACK
    if (it != flows_by_key_.end()) {
      PendingFlow& f = flows_[it->second];
      if (f.accepted) DeliverAs(pp, data, len);  // handshake in progress inside lwIP
      return;                                     // else: a retransmitted SYN while dialing
    }
    if (!syn) {
      // A segment of an established (or unknown) connection: lwIP finds it, or resets it.
      DeliverAs(pp, data, len);
      return;
    }
    if (HasConnection(pp)) {
      DeliverAs(pp, data, len);
      return;
    }
    SweepFlows();
    if (flows_.size() >= kMaxPendingFlows) {
      counters_.syn_dropped++;
      return;
    }
    PendingFlow f;
    f.id = next_flow_id_++;
    f.key = key;
    f.parsed = pp;
    f.syn.assign(data, data + len);
    f.created_ms = NowMs();
    Event e{kFlow};
    e.id = f.id;
    ToIpAddr(pp.key.family, pp.key.src, &e.addr);
    e.port = pp.key.sport;
    ToIpAddr(pp.key.family, pp.key.dst, &e.addr2);
    e.port2 = pp.key.dport;
    flows_by_key_[key] = f.id;
    flows_.emplace(f.id, std::move(f));
    QueueEvent(std::move(e));
  }

  bool HasConnection(const ParsedPacket& pp) {
    ip_addr_t src, dst;
    ToIpAddr(pp.key.family, pp.key.src, &src);
    ToIpAddr(pp.key.family, pp.key.dst, &dst);
    for (tcp_pcb* p = tcp_active_pcbs; p != nullptr; p = p->next) {
      if (p->remote_port == pp.key.sport && p->local_port == pp.key.dport && ip_addr_cmp(&p->remote_ip, &src) &&
          ip_addr_cmp(&p->local_ip, &dst))
        return true;
    }
    return false;
  }

  void SweepFlows() {
    uint32_t now = NowMs();
    for (auto it = flows_.begin(); it != flows_.end();) {
      if (now - it->second.created_ms > kPendingFlowTtlMs) {
        flows_by_key_.erase(it->second.key);
        it = flows_.erase(it);
        counters_.flows_expired++;
      } else {
        ++it;
      }
    }
  }

  Napi::Value TakePackets(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint8_t> data;
    std::vector<uint32_t> sizes;
    {
      std::lock_guard<std::mutex> g(out_mu_);
      if (out_sizes_.empty()) return env.Null();
      data.swap(out_data_);
      sizes.swap(out_sizes_);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("data", Napi::Buffer<uint8_t>::Copy(env, data.data(), data.size()));
    Napi::Uint32Array s = Napi::Uint32Array::New(env, sizes.size());
    std::memcpy(s.Data(), sizes.data(), sizes.size() * 4);
    r.Set("sizes", s);
    return r;
  }

  // Received bytes as a Buffer (data_blocks.h): a short run copied, its block reused at once;
  // a long one over the block itself, which returns to the pool when the Buffer is collected.
  // The garbage collector is told of the block, as it would be of memory of its own.
  // C calls: a failure (teardown) is no reason to end the process.
  static napi_value BlockToBuffer(napi_env env, DataBlock* block) {
    napi_value buf = nullptr;
    void* ignored;
    if (block->size() < kCopyBelow) {
      napi_create_buffer_copy(env, block->size(), block->data(), &ignored, &buf);
      return buf;
    }
    size_t size = block->size();
    auto* pool = new std::shared_ptr<BlockPool>(block->pool());
    uint8_t* bytes = block->Release();
    napi_status st = napi_create_external_buffer(
        env, size, bytes,
        [](napi_env e, void* data, void* hint) {
          auto* p = static_cast<std::shared_ptr<BlockPool>*>(hint);
          int64_t left;
          if (e != nullptr) napi_adjust_external_memory(e, -int64_t(BlockPool::kBlockSize), &left);
          (*p)->Give(static_cast<uint8_t*>(data));
          delete p;
        },
        pool, &buf);
    if (st != napi_ok) {
      (*pool)->Give(bytes);
      delete pool;
      return nullptr;
    }
    int64_t total;
    napi_adjust_external_memory(env, int64_t(BlockPool::kBlockSize), &total);
    return buf;
  }

  Napi::Value TakeEvents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<Event> evs;
    {
      std::lock_guard<std::mutex> g(ev_mu_);
      evs.swap(events_);
    }
    Napi::Array arr = Napi::Array::New(env, evs.size());
    for (size_t i = 0; i < evs.size(); i++) {
      Event& e = evs[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("type", kEventNames[e.type]);
      o.Set("id", e.id);
      switch (e.type) {
        case kAccept:
          o.Set("conn", e.id2);
          o.Set("flow", Napi::Number::New(env, double(e.num)));
          [[fallthrough]];
        case kConnected:
          o.Set("remoteAddress", AddrString(e.addr));
          o.Set("remotePort", e.port);
          o.Set("localAddress", AddrString(e.addr2));
          o.Set("localPort", e.port2);
          break;
        case kData: {
          napi_value data = BlockToBuffer(env, &e.block);
          if (data == nullptr) return env.Undefined();  // the environment is going away
          o.Set("data", data);
          break;
        }
        case kSent:
        case kError:
          o.Set("num", Napi::Number::New(env, double(e.num)));
          break;
        case kUdp:
          o.Set("data", Napi::Buffer<uint8_t>::Copy(env, e.data.data(), e.data.size()));
          o.Set("address", AddrString(e.addr));
          o.Set("port", e.port);
          break;
        case kEcho:
          o.Set("address", AddrString(e.addr));
          o.Set("num", Napi::Number::New(env, double(e.num)));
          o.Set("size", Napi::Number::New(env, double(e.data.size())));
          break;
        case kFlow:
        case kRouterUdp:
          o.Set("srcAddress", AddrString(e.addr));
          o.Set("srcPort", e.port);
          o.Set("dstAddress", AddrString(e.addr2));
          o.Set("dstPort", e.port2);
          if (e.type == kRouterUdp) o.Set("data", Napi::Buffer<uint8_t>::Copy(env, e.data.data(), e.data.size()));
          break;
        case kEnd:
          break;
      }
      arr.Set(uint32_t(i), o);
    }
    return arr;
  }

  // ---- TCP ----

  Conn* NewConn(tcp_pcb* pcb, bool listener) {
    auto c = std::make_unique<Conn>(Conn{next_id_++, this, pcb, listener, 0, 0});
    Conn* raw = c.get();
    conns_.emplace(raw->id, std::move(c));
    tcp_arg(pcb, raw);
    if (!listener) {
      tcp_recv(pcb, &Stack::OnRecv);
      tcp_sent(pcb, &Stack::OnSent);
      tcp_err(pcb, &Stack::OnErr);
      tcp_nagle_disable(pcb);
    }
    return raw;
  }

  Conn* FindConn(const Napi::Value& v) {
    if (!v.IsNumber()) return nullptr;
    auto it = conns_.find(v.As<Napi::Number>().Uint32Value());
    return it == conns_.end() ? nullptr : it->second.get();
  }

  static void FillEnds(Event* e, const tcp_pcb* pcb) {
    e->addr = pcb->remote_ip;
    e->port = pcb->remote_port;
    e->addr2 = pcb->local_ip;
    e->port2 = pcb->local_port;
  }

  static err_t OnAccept(void* arg, tcp_pcb* newpcb, err_t err) {
    Conn* l = static_cast<Conn*>(arg);
    if (err != ERR_OK || newpcb == nullptr || l == nullptr) return ERR_VAL;
    Stack* s = l->stack;
    int64_t flow = 0;
    if (s->router_ && l->id == 0) {
      // A router listener: the connection belongs to the flow JavaScript dialed for it.
      flow = s->TakeAcceptedFlow(newpcb);
      if (flow == 0) {
        tcp_abort(newpcb);
        return ERR_ABRT;
      }
    }
    Conn* c = s->NewConn(newpcb, false);
    WidenWindow(newpcb, s->WindowCap());
    Event e{kAccept};
    e.id = l->id;
    e.id2 = c->id;
    e.num = flow;
    FillEnds(&e, newpcb);
    s->QueueEvent(std::move(e));
    return ERR_OK;
  }

  static err_t OnConnected(void* arg, tcp_pcb* pcb, err_t) {
    Conn* c = static_cast<Conn*>(arg);
    if (c->scale_offered && (pcb->flags & TF_WND_SCALE)) pcb->rcv_scale = kWindowScale;
    WidenWindow(pcb, c->stack->WindowCap());
    Event e{kConnected};
    e.id = c->id;
    FillEnds(&e, pcb);
    c->stack->QueueEvent(std::move(e));
    return ERR_OK;
  }

  static err_t OnRecv(void* arg, tcp_pcb* pcb, pbuf* p, err_t) {
    Conn* c = static_cast<Conn*>(arg);
    if (p == nullptr) {
      Event e{kEnd};
      e.id = c->id;
      c->stack->QueueEvent(std::move(e));
      return ERR_OK;
    }
    Stack* s = c->stack;
    // Out of memory for a block: lwIP keeps the segment and offers it again later.
    if (!s->QueueData(c->id, p)) return ERR_MEM;
    c->app_pending += p->tot_len;
    s->app_pending_total_ += p->tot_len;
    if (c->app_pending <= kReadAhead && s->app_pending_total_ <= kTotalReadAhead)
      OpenWindow(pcb, p->tot_len, s->WindowCap());
    else
      c->withheld += p->tot_len;
    pbuf_free(p);
    return ERR_OK;
  }

  // Received bytes, copied once: onto the block of the connection's data event waiting last,
  // and what does not fit there onto a new one (a segment is smaller than a block). False,
  // nothing queued, when no block can be had.
  bool QueueData(uint32_t id, const pbuf* p) {
    {
      std::lock_guard<std::mutex> g(ev_mu_);
      Event* last = events_.empty() ? nullptr : &events_.back();
      if (last != nullptr && (last->type != kData || last->id != id)) last = nullptr;
      size_t first = last == nullptr ? 0 : std::min<size_t>(p->tot_len, last->block.room());
      if (first < p->tot_len) {
        Event e{kData};
        e.id = id;
        e.block = DataBlock(blocks_);
        if (!e.block.valid()) return false;
        if (first > 0) pbuf_copy_partial(p, last->block.Append(first), uint16_t(first), 0);
        pbuf_copy_partial(p, e.block.Append(p->tot_len - first), uint16_t(p->tot_len - first), uint16_t(first));
        events_.push_back(std::move(e));
      } else {
        pbuf_copy_partial(p, last->block.Append(first), uint16_t(first), 0);
      }
    }
    Wake();
    return true;
  }

  static err_t OnSent(void* arg, tcp_pcb*, u16_t len) {
    Conn* c = static_cast<Conn*>(arg);
    Event e{kSent};
    e.id = c->id;
    e.num = len;
    c->stack->QueueEvent(std::move(e));
    return ERR_OK;
  }

  static void OnErr(void* arg, err_t err) {
    Conn* c = static_cast<Conn*>(arg);
    if (c == nullptr) return;
    c->pcb = nullptr;  // lwIP has freed it
    Event e{kError};
    e.id = c->id;
    e.num = err;
    c->stack->QueueEvent(std::move(e));
  }

  // tcpConnect(address, port) → id; "connected" or "error" follows.
  Napi::Value TcpConnect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ip_addr_t addr;
    if (!open_ || !ParseAddr(info[0], &addr) || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "tcpConnect(address, port)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint16_t port = uint16_t(info[1].As<Napi::Number>().Uint32Value());
    CoreLock lock;
    tcp_pcb* pcb = tcp_new_ip_type(IP_GET_TYPE(&addr));
    if (pcb == nullptr) return ThrowErr(env, ERR_MEM, "tcpConnect");
    Conn* c = NewConn(pcb, false);
    err_t err = tcp_connect(pcb, &addr, port, &Stack::OnConnected);
    if (err != ERR_OK) {
      tcp_arg(pcb, nullptr);
      tcp_abort(pcb);
      conns_.erase(c->id);
      return ThrowErr(env, err, "tcpConnect");
    }
    return Napi::Number::New(env, c->id);
  }

  // tcpListen(address | null, port, backlog) → { id, port }
  Napi::Value TcpListen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ip_addr_t addr = *IP_ANY_TYPE;
    if (!open_ || (!info[0].IsNull() && !info[0].IsUndefined() && !ParseAddr(info[0], &addr)) || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "tcpListen(address, port, backlog)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint16_t port = uint16_t(info[1].As<Napi::Number>().Uint32Value());
    uint8_t backlog = info[2].IsNumber() ? uint8_t(std::min(255u, info[2].As<Napi::Number>().Uint32Value())) : 128;
    CoreLock lock;
    u8_t type = ip_addr_isany(&addr) ? u8_t(IPADDR_TYPE_ANY) : u8_t(IP_GET_TYPE(&addr));
    tcp_pcb* pcb = tcp_new_ip_type(type);
    if (pcb == nullptr) return ThrowErr(env, ERR_MEM, "tcpListen");
    if (router_) ip_set_option(pcb, SOF_REUSEADDR);
    err_t err = tcp_bind(pcb, &addr, port);
    if (err != ERR_OK) {
      tcp_close(pcb);
      return ThrowErr(env, err, "tcpListen");
    }
    tcp_pcb* lpcb = tcp_listen_with_backlog_and_err(pcb, backlog, &err);
    if (lpcb == nullptr) {
      tcp_close(pcb);
      return ThrowErr(env, err, "tcpListen");
    }
    Conn* c = NewConn(lpcb, true);
    tcp_accept(lpcb, &Stack::OnAccept);
    Napi::Object r = Napi::Object::New(env);
    r.Set("id", c->id);
    r.Set("port", lpcb->local_port);
    return r;
  }

  // tcpWrite(id, bytes) → how many bytes lwIP took (0 when its send buffer is full).
  Napi::Value TcpWrite(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CoreLock lock;
    Conn* c = FindConn(info[0]);
    if (c == nullptr || c->pcb == nullptr || !info[1].IsTypedArray()) return Napi::Number::New(env, -1);
    Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
    size_t total = b.ByteLength();
    size_t done = 0;
    while (done < total) {
      size_t room = tcp_sndbuf(c->pcb);
      if (room == 0 || tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN - 1) break;
      size_t n = std::min(total - done, std::min(room, size_t(0xffff)));
      if (tcp_write(c->pcb, b.Data() + done, uint16_t(n), TCP_WRITE_FLAG_COPY) != ERR_OK) break;
      done += n;
    }
    if (done > 0) {
      BeginOutBatch();
      tcp_output(c->pcb);
      EndOutBatch();
    }
    return Napi::Number::New(env, double(done));
  }

  // tcpRecved(id, n): the application consumed n bytes; opens the receive window for what
  // was withheld once less than kReadAhead waits.
  Napi::Value TcpRecved(const Napi::CallbackInfo& info) {
    CoreLock lock;
    Conn* c = FindConn(info[0]);
    if (c != nullptr && c->pcb != nullptr && info[1].IsNumber()) {
      uint32_t taken = std::min(info[1].As<Napi::Number>().Uint32Value(), c->app_pending);
      c->app_pending -= taken;
      app_pending_total_ -= taken;
      // Over the total, a connection whose reader has taken everything still gets its window
      // back: none of the buffered bytes are its own.
      if (c->app_pending > kReadAhead || (app_pending_total_ > kTotalReadAhead && c->app_pending > 0))
        return info.Env().Undefined();
      uint32_t n = c->withheld;
      c->withheld = 0;
      if (n > 0) OpenWindow(c->pcb, n, WindowCap());
    }
    return info.Env().Undefined();
  }

  Napi::Value TcpShutdown(const Napi::CallbackInfo& info) {
    CoreLock lock;
    Conn* c = FindConn(info[0]);
    if (c != nullptr && c->pcb != nullptr) tcp_shutdown(c->pcb, 0, 1);
    return info.Env().Undefined();
  }

  // tcpClose(id, abort): closes (FIN, or RST with abort) and forgets the connection.
  Napi::Value TcpClose(const Napi::CallbackInfo& info) {
    CoreLock lock;
    Conn* c = FindConn(info[0]);
    if (c == nullptr) return info.Env().Undefined();
    bool abort = info[1].ToBoolean().Value();
    app_pending_total_ -= c->app_pending;
    CloseConn(c, abort);
    conns_.erase(c->id);
    return info.Env().Undefined();
  }

  void CloseConn(Conn* c, bool abort) {
    tcp_pcb* pcb = c->pcb;
    c->pcb = nullptr;
    if (pcb == nullptr) return;
    tcp_arg(pcb, nullptr);
    if (c->listener) {
      tcp_accept(pcb, nullptr);
      tcp_close(pcb);
      return;
    }
    tcp_recv(pcb, nullptr);  // lwIP then discards late data and finishes the close itself
    tcp_sent(pcb, nullptr);
    tcp_err(pcb, nullptr);
    if (abort || tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
  }

  // tcpKeepAlive(id, idleMs): TCP keepalives after idleMs without traffic (0 = off).
  Napi::Value TcpKeepAlive(const Napi::CallbackInfo& info) {
    CoreLock lock;
    Conn* c = FindConn(info[0]);
    if (c != nullptr && c->pcb != nullptr && info[1].IsNumber()) {
      uint32_t ms = info[1].As<Napi::Number>().Uint32Value();
      if (ms == 0) {
        ip_reset_option(c->pcb, SOF_KEEPALIVE);
      } else {
        ip_set_option(c->pcb, SOF_KEEPALIVE);
        c->pcb->keep_idle = ms;
        c->pcb->keep_intvl = 10000;
        c->pcb->keep_cnt = 9;
      }
    }
    return info.Env().Undefined();
  }

  // ---- router flows ----

  // The flow whose SYN produced this connection; 0 if JavaScript did not accept one.
  int64_t TakeAcceptedFlow(const tcp_pcb* pcb) {
    FlowKey k;
    const bool v4 = IP_IS_V4(&pcb->remote_ip);
    k.family = v4 ? 4 : 6;
    if (v4) {
      uint32_t a = ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip));
      std::memcpy(k.src, &a, 4);
      a = ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip));
      std::memcpy(k.dst, &a, 4);
    } else {
      std::memcpy(k.src, ip_2_ip6(&pcb->remote_ip)->addr, 16);
      std::memcpy(k.dst, ip_2_ip6(&pcb->local_ip)->addr, 16);
    }
    k.sport = pcb->remote_port;
    k.dport = pcb->local_port;
    auto it = flows_by_key_.find(KeyString(k));
    if (it == flows_by_key_.end()) return 0;
    uint32_t id = it->second;
    bool ok = flows_[id].accepted;
    flows_.erase(id);
    flows_by_key_.erase(it);
    return ok ? id : 0;
  }

  PendingFlow* FindFlow(const Napi::Value& v) {
    if (!v.IsNumber()) return nullptr;
    auto it = flows_.find(v.As<Napi::Number>().Uint32Value());
    return it == flows_.end() ? nullptr : &it->second;
  }

  // flowAccept(id): the upstream dial succeeded; lwIP now answers the held SYN.
  Napi::Value FlowAccept(const Napi::CallbackInfo& info) {
    CoreLock lock;
    PendingFlow* f = FindFlow(info[0]);
    if (f == nullptr || f->accepted || !open_) return Napi::Boolean::New(info.Env(), false);
    uint16_t port = f->parsed.key.dport;
    if (router_listeners_.find(port) == router_listeners_.end()) {
      tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
      err_t err = ERR_MEM;
      tcp_pcb* lpcb = nullptr;
      if (pcb != nullptr) {
        ip_set_option(pcb, SOF_REUSEADDR);
        if (tcp_bind(pcb, IP_ANY_TYPE, port) == ERR_OK) lpcb = tcp_listen_with_backlog_and_err(pcb, 255, &err);
        if (lpcb == nullptr) tcp_close(pcb);
      }
      if (lpcb == nullptr) return Napi::Boolean::New(info.Env(), false);
      tcp_arg(lpcb, &router_listener_);
      tcp_accept(lpcb, &Stack::OnAccept);
      router_listeners_[port] = lpcb;
    }
    f->accepted = true;
    std::vector<uint8_t> syn;
    syn.swap(f->syn);
    ParsedPacket pp = f->parsed;
    DeliverAs(pp, syn.data(), syn.size());
    return Napi::Boolean::New(info.Env(), true);
  }

  // flowReject(id): the dial failed (or the flow limit is reached); the peer gets a RST.
  Napi::Value FlowReject(const Napi::CallbackInfo& info) {
    std::vector<uint8_t> rst;
    {
      CoreLock lock;
      PendingFlow* f = FindFlow(info[0]);
      if (f == nullptr || f->accepted) return info.Env().Undefined();
      BuildTcpReset(f->parsed, &rst);
      flows_by_key_.erase(f->key);
      flows_.erase(f->id);
    }
    QueueRaw(rst);
    return info.Env().Undefined();
  }

  void QueueRaw(const std::vector<uint8_t>& pkt) {
    {
      CoreLock lock;
      if (pkt_fd_ >= 0) {
        struct pbuf p {};
        p.payload = const_cast<uint8_t*>(pkt.data());
        p.len = p.tot_len = uint16_t(pkt.size());
        SendPacket(&p);
        return;
      }
    }
    {
      std::lock_guard<std::mutex> g(out_mu_);
      if (out_sizes_.size() >= kMaxQueuedPackets || out_data_.size() + pkt.size() > kMaxQueuedBytes) {
        out_dropped_++;
        return;
      }
      out_data_.insert(out_data_.end(), pkt.begin(), pkt.end());
      out_sizes_.push_back(uint32_t(pkt.size()));
      packets_out_++;
    }
    Wake();
  }

  // routerUdpSend(srcAddress, srcPort, dstAddress, dstPort, payload): a reply datagram of a
  // router UDP flow, sent from dst to src (the flow as the peer opened it).
  Napi::Value RouterUdpSend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ip_addr_t src, dst;
    if (!ParseAddr(info[0], &src) || !ParseAddr(info[2], &dst) || !info[4].IsTypedArray() ||
        IP_GET_TYPE(&src) != IP_GET_TYPE(&dst)) {
      return Napi::Boolean::New(env, false);
    }
    Napi::Uint8Array b = info[4].As<Napi::Uint8Array>();
    size_t hdr = IP_IS_V4(&src) ? 28 : 48;
    if (b.ByteLength() + hdr > netif_.mtu) {
      CoreLock lock;
      counters_.router_dropped++;
      return Napi::Boolean::New(env, false);
    }
    FlowKey k;
    k.family = IP_IS_V4(&src) ? 4 : 6;
    if (k.family == 4) {
      uint32_t a = ip4_addr_get_u32(ip_2_ip4(&src));
      std::memcpy(k.src, &a, 4);
      a = ip4_addr_get_u32(ip_2_ip4(&dst));
      std::memcpy(k.dst, &a, 4);
    } else {
      std::memcpy(k.src, ip_2_ip6(&src)->addr, 16);
      std::memcpy(k.dst, ip_2_ip6(&dst)->addr, 16);
    }
    k.sport = uint16_t(info[1].As<Napi::Number>().Uint32Value());
    k.dport = uint16_t(info[3].As<Napi::Number>().Uint32Value());
    std::vector<uint8_t> pkt;
    BuildUdp(k, b.Data(), b.ByteLength(), &pkt);
    QueueRaw(pkt);
    return Napi::Boolean::New(env, true);
  }

  // ---- UDP ----

  static void OnUdp(void* arg, udp_pcb*, pbuf* p, const ip_addr_t* addr, u16_t port) {
    UdpSock* u = static_cast<UdpSock*>(arg);
    Event e{kUdp};
    e.id = u->id;
    e.data.resize(p->tot_len);
    pbuf_copy_partial(p, e.data.data(), p->tot_len, 0);
    pbuf_free(p);
    e.addr = *addr;
    e.port = port;
    u->stack->QueueEvent(std::move(e));
  }

  // udpBind(address | null, port) → { id, port }
  Napi::Value UdpBind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ip_addr_t addr = *IP_ANY_TYPE;
    if (!open_ || (!info[0].IsNull() && !info[0].IsUndefined() && !ParseAddr(info[0], &addr))) {
      Napi::TypeError::New(env, "udpBind(address, port)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint16_t port = info[1].IsNumber() ? uint16_t(info[1].As<Napi::Number>().Uint32Value()) : 0;
    CoreLock lock;
    udp_pcb* pcb = udp_new_ip_type(ip_addr_isany(&addr) ? u8_t(IPADDR_TYPE_ANY) : u8_t(IP_GET_TYPE(&addr)));
    if (pcb == nullptr) return ThrowErr(env, ERR_MEM, "udpBind");
    err_t err = udp_bind(pcb, &addr, port);
    if (err != ERR_OK) {
      udp_remove(pcb);
      return ThrowErr(env, err, "udpBind");
    }
    auto u = std::make_unique<UdpSock>(UdpSock{next_id_++, this, pcb});
    udp_recv(pcb, &Stack::OnUdp, u.get());
    uint32_t id = u->id;
    udps_.emplace(id, std::move(u));
    Napi::Object r = Napi::Object::New(env);
    r.Set("id", id);
    r.Set("port", pcb->local_port);
    return r;
  }

  // udpSend(id, bytes, address, port) → lwIP's err_t (0 = sent)
  Napi::Value UdpSend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ip_addr_t addr;
    if (!info[0].IsNumber() || !info[1].IsTypedArray() || !ParseAddr(info[2], &addr) || !info[3].IsNumber())
      return Napi::Number::New(env, ERR_ARG);
    Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
    if (b.ByteLength() > 0xffff - 48) return Napi::Number::New(env, ERR_VAL);
    CoreLock lock;
    auto it = udps_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == udps_.end()) return Napi::Number::New(env, ERR_CLSD);
    pbuf* p = pbuf_alloc(PBUF_TRANSPORT, uint16_t(b.ByteLength()), PBUF_RAM);
    if (p == nullptr) return Napi::Number::New(env, ERR_MEM);
    std::memcpy(p->payload, b.Data(), b.ByteLength());
    err_t err = udp_sendto(it->second->pcb, p, &addr, uint16_t(info[3].As<Napi::Number>().Uint32Value()));
    pbuf_free(p);
    return Napi::Number::New(env, err);
  }

  Napi::Value UdpClose(const Napi::CallbackInfo& info) {
    CoreLock lock;
    if (info[0].IsNumber()) {
      auto it = udps_.find(info[0].As<Napi::Number>().Uint32Value());
      if (it != udps_.end()) {
        udp_remove(it->second->pcb);
        udps_.erase(it);
      }
    }
    return info.Env().Undefined();
  }

  // ---- ICMP echo ----

  static u8_t OnRaw(void* arg, raw_pcb*, pbuf* p, const ip_addr_t* addr) {
    Stack* s = static_cast<Stack*>(arg);
    uint8_t head[48];
    uint16_t n = pbuf_copy_partial(p, head, sizeof head, 0);
    if (n < 1) return 0;
    size_t off;
    uint8_t want;
    if ((head[0] >> 4) == 4) {
      off = size_t(head[0] & 0x0f) * 4;
      want = 0;  // ICMP echo reply
    } else if ((head[0] >> 4) == 6) {
      off = 40;
      want = 129;  // ICMPv6 echo reply
    } else {
      return 0;
    }
    if (n < off + 8 || head[off] != want) return 0;
    uint16_t ident = uint16_t((head[off + 4] << 8) | head[off + 5]);
    if (ident != s->ping_ident_) return 0;
    Event e{kEcho};
    e.num = (head[off + 6] << 8) | head[off + 7];
    e.addr = *addr;
    e.data.resize(p->tot_len - off - 8);
    s->QueueEvent(std::move(e));
    pbuf_free(p);
    return 1;
  }

  // ping(address, ident, seq, payloadBytes) → lwIP's err_t; an "echo" event carries the reply.
  Napi::Value Ping(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ip_addr_t addr;
    if (!open_ || !ParseAddr(info[0], &addr) || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber())
      return Napi::Number::New(env, ERR_ARG);
    uint16_t ident = uint16_t(info[1].As<Napi::Number>().Uint32Value());
    uint16_t seq = uint16_t(info[2].As<Napi::Number>().Uint32Value());
    size_t size = std::min<uint32_t>(info[3].As<Napi::Number>().Uint32Value(), 1400);
    CoreLock lock;
    ping_ident_ = ident;
    bool v4 = IP_IS_V4(&addr);
    raw_pcb*& pcb = v4 ? raw4_ : raw6_;
    if (pcb == nullptr) {
      pcb = v4 ? raw_new(IP_PROTO_ICMP) : raw_new_ip_type(IPADDR_TYPE_V6, IP6_NEXTH_ICMP6);
      if (pcb == nullptr) return Napi::Number::New(env, ERR_MEM);
      if (!v4) {
        pcb->chksum_reqd = 1;
        pcb->chksum_offset = 2;
      }
      raw_recv(pcb, &Stack::OnRaw, this);
    }
    pbuf* p = pbuf_alloc(PBUF_IP, uint16_t(8 + size), PBUF_RAM);
    if (p == nullptr) return Napi::Number::New(env, ERR_MEM);
    uint8_t* d = static_cast<uint8_t*>(p->payload);
    d[0] = v4 ? 8 : 128;
    d[1] = 0;
    d[2] = d[3] = 0;
    d[4] = uint8_t(ident >> 8);
    d[5] = uint8_t(ident);
    d[6] = uint8_t(seq >> 8);
    d[7] = uint8_t(seq);
    for (size_t i = 0; i < size; i++) d[8 + i] = uint8_t(i);
    if (v4) {
      uint16_t c = inet_chksum(d, uint16_t(8 + size));
      std::memcpy(d + 2, &c, 2);
    }
    err_t err = raw_sendto(pcb, p, &addr);
    pbuf_free(p);
    return Napi::Number::New(env, err);
  }

  // ---- life cycle ----

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    size_t conns, flows, udps, queued;
    Counters n;
    {
      // Written by lwIP's callbacks and the packet input, all under the core lock.
      CoreLock lock;
      n = counters_;
      conns = conns_.size();
      flows = flows_.size();
      udps = udps_.size();
    }
    uint64_t out_dropped, packets_out;
    {
      std::lock_guard<std::mutex> g(out_mu_);
      out_dropped = out_dropped_;
      packets_out = packets_out_;
      queued = out_sizes_.size();
    }
    o.Set("packetsIn", double(n.packets_in));
    o.Set("packetsDirect", double(n.packets_direct));
    o.Set("inputDropped", double(n.input_dropped));
    o.Set("packetsOut", double(packets_out));
    o.Set("outputDropped", double(out_dropped));
    o.Set("outputQueued", double(queued));
    o.Set("connections", double(conns));
    o.Set("udpSockets", double(udps));
    o.Set("pendingFlows", double(flows));
    o.Set("synDropped", double(n.syn_dropped));
    o.Set("synScaled", double(n.syn_scaled));
    o.Set("acksSuperseded", double(n.acks_superseded));
    o.Set("flowsExpired", double(n.flows_expired));
    o.Set("routerDropped", double(n.router_dropped));
    o.Set("routerUdpIn", double(n.router_udp_in));
    return o;
  }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (open_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (open_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (!open_) {
      if (owns_global_) {
        owns_global_ = false;
        g_stack_open.store(false);
      }
      return;
    }
    DetachSink();
    open_ = false;
    // The reader takes the core lock: it stops before the lock is taken here. Resets sent
    // below go to the socket if the data plane still reads it.
    StopPacketReader();
    {
      CoreLock lock;
      for (auto& kv : conns_) CloseConn(kv.second.get(), true);
      conns_.clear();
      for (auto& kv : udps_) udp_remove(kv.second->pcb);
      udps_.clear();
      for (auto& kv : router_listeners_) {
        tcp_arg(kv.second, nullptr);
        tcp_accept(kv.second, nullptr);
        tcp_close(kv.second);
      }
      router_listeners_.clear();
      // Connections still closing inside lwIP (FIN_WAIT, TIME_WAIT) must not reach this object.
      for (tcp_pcb* p = tcp_active_pcbs; p != nullptr;) {
        tcp_pcb* next = p->next;
        tcp_arg(p, nullptr);
        tcp_abort(p);
        p = next;
      }
      if (raw4_ != nullptr) raw_remove(raw4_);
      if (raw6_ != nullptr) raw_remove(raw6_);
      raw4_ = raw6_ = nullptr;
      flows_.clear();
      flows_by_key_.clear();
      netif_set_down(&netif_);
      netif_remove(&netif_);
    }
    ClosePacketFd();
    tsfn_.Release();
    owns_global_ = false;
    g_stack_open.store(false);
  }

  Napi::Value ThrowErr(Napi::Env env, err_t err, const char* what) {
    Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + lwip_strerr(err));
    e.Set("lwipError", Napi::Number::New(env, err));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }

  struct netif netif_ {};
  bool router_ = false;
  bool open_ = false;
  bool owns_global_ = false;
  Napi::ThreadSafeFunction tsfn_;
  std::atomic<bool> wake_pending_{false};

  std::mutex out_mu_;
  std::vector<uint8_t> out_data_;
  std::vector<uint32_t> out_sizes_;
  uint64_t out_dropped_ = 0;
  uint64_t packets_out_ = 0;

  std::mutex ev_mu_;
  std::vector<Event> events_;
  SinkState* sink_ = nullptr;
  std::shared_ptr<BlockPool> blocks_ = std::make_shared<BlockPool>();

  // The packet socket (openPacketFd): this end, guarded by the core lock; its reader thread
  // and the eventfd that stops it.
  int pkt_fd_ = -1;
  int stop_fd_ = -1;
  bool out_batching_ = false;
  std::vector<uint8_t> out_batch_;
  std::vector<uint32_t> out_batch_sizes_;
  std::vector<BatchFlow> batch_flows_;
  std::thread reader_;

  // Under the core lock:
  uint32_t next_id_ = 1;
  std::unordered_map<uint32_t, std::unique_ptr<Conn>> conns_;
  std::unordered_map<uint32_t, std::unique_ptr<UdpSock>> udps_;
  raw_pcb* raw4_ = nullptr;
  raw_pcb* raw6_ = nullptr;
  uint16_t ping_ident_ = 0;
  Conn router_listener_{0, this, nullptr, true};
  std::map<uint16_t, tcp_pcb*> router_listeners_;
  std::unordered_map<uint32_t, PendingFlow> flows_;
  std::unordered_map<std::string, uint32_t> flows_by_key_;
  uint32_t next_flow_id_ = 1;
  uint64_t app_pending_total_ = 0;
  // What stats() reports; guarded by the core lock.
  struct Counters {
    uint64_t packets_in = 0;
    uint64_t packets_direct = 0;
    uint64_t input_dropped = 0;
    uint64_t syn_dropped = 0;
    uint64_t syn_scaled = 0;
    uint64_t acks_superseded = 0;
    uint64_t flows_expired = 0;
    uint64_t router_dropped = 0;
    uint64_t router_udp_in = 0;
  } counters_;
};

}  // namespace

Napi::Function DefineStack(Napi::Env env) { return Stack::Define(env); }

}  // namespace tswg_netstack

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("abiVersion", Napi::Number::New(env, 2));
  exports.Set("Stack", tswg_netstack::DefineStack(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(tswg_netstack, Init)
