#include "datapath.h"

#include <string.h>
#include <time.h>

#include "addon_data.h"
#include "checksum.h"
#include "errno_error.h"
#include "pmtu.h"
#include "tun_device.h"

namespace tswg {

namespace {

constexpr uint8_t kMessageTransport = 4;
constexpr size_t kTransportHeader = 16;
// TURN ChannelData (RFC 8656 §12.4): channel number and length, then the datagram, unpadded over UDP.
constexpr size_t kChannelHeader = 4;
constexpr size_t kPadding = 16;
// First size of the buffer the datagrams of a batch are built in; it grows to what batches need.
constexpr size_t kTrainBuffer = 512 * 1024;

int64_t MonotonicNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint32_t LoadLe32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

void StoreLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void StoreLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

void Wipe(uint8_t* p, size_t n) {
  volatile uint8_t* v = p;
  while (n-- > 0) *v++ = 0;
}

// The length of the IP packet at the start of `p`, or 0 when it is not a sane IPv4/IPv6 packet.
size_t InnerLength(const uint8_t* p, size_t len) {
  if (len < 1) return 0;
  int version = p[0] >> 4;
  if (version == 4 && len >= 20) {
    size_t l = LoadBe16(p + 2);
    return l >= 20 && l <= len ? l : 0;
  }
  if (version == 6 && len >= 40) {
    size_t l = LoadBe16(p + 4) + 40u;
    return l <= len ? l : 0;
  }
  return 0;
}

// Padded plaintext length: a multiple of 16, but never beyond the MTU unless the packet is.
size_t PaddedLength(size_t len, uint32_t mtu) {
  if (len == 0) return 0;
  size_t padded = (len + kPadding - 1) / kPadding * kPadding;
  if (mtu > 0 && padded > mtu) padded = len > mtu ? len : mtu;
  return padded;
}

void PassOn(PacketBatch* rest, const uint8_t* pkt, size_t len) {
  if (rest == nullptr || !rest->Reserve(len)) return;
  memcpy(rest->Tail(), pkt, len);
  rest->Commit(len);
}

}  // namespace

NativeKeypair::~NativeKeypair() {
  Wipe(send_key, sizeof(send_key));
  Wipe(recv_key, sizeof(recv_key));
}

// ---- the core: what runs on the reader threads ------------------------------------------------

struct DataPathCore::Train {
  NativePeer* peer = nullptr;
  SockAddr to;
  size_t offset = 0;  // in train_buf_
  size_t count = 0;
  size_t seg = 0;
  size_t total = 0;
  bool short_last = false;
};

DataPathCore::DataPathCore(SharedFdPtr tun_fd, bool vnet, unsigned offloads, uint64_t reject_msgs, int64_t reject_ns,
                           uint32_t mtu)
    : reject_after_messages(reject_msgs),
      reject_after_time_ns(reject_ns),
      tun_fd_(std::move(tun_fd)),
      vnet_(vnet),
      mtu_(mtu),
      too_big_(tun_fd_->get(), vnet),
      writer_(vnet, offloads) {
  train_buf_.resize(kTrainBuffer);
  trains_.reserve(64);
  confirm_.reserve(16);
}

DataPathCore::~DataPathCore() = default;

void DataPathCore::SetUdp(std::shared_ptr<UdpSockets> udp) {
  std::lock_guard<std::mutex> lock(udp_mu_);
  udp_ = udp;
}

void DataPathCore::CloseEvents() {
  std::lock_guard<std::mutex> lock(events_mu_);
  if (has_events_) events_.Abort();
  has_events_ = false;
}

void DataPathCore::Emit(int type, uint32_t peer_id, uint32_t local_index) {
  std::lock_guard<std::mutex> lock(events_mu_);
  if (!has_events_) return;
  auto* e = new DataPathEvent{type, peer_id, local_index};
  if (events_.NonBlockingCall(e) != napi_ok) delete e;
}

void DataPathCore::Shutdown() {
  closed_.store(true, std::memory_order_release);
  {
    std::unique_lock<std::shared_mutex> lock(mu);
    index.clear();
    peers.clear();
    routes.Clear();
  }
  {
    std::lock_guard<std::mutex> lock(udp_mu_);
    udp_.reset();
  }
  // Taking both sides' locks waits out a batch in progress before the descriptor goes.
  std::lock_guard<std::mutex> s(send_mu_);
  std::lock_guard<std::mutex> r(recv_mu_);
  tun_fd_.reset();
}

size_t DataPathCore::HandleTunPackets(PacketBatch& packets, PacketBatch* rest) {
  std::lock_guard<std::mutex> side(send_mu_);
  std::shared_ptr<UdpSockets> udp;
  {
    std::lock_guard<std::mutex> lock(udp_mu_);
    udp = udp_.lock();
  }
  const uint8_t* data = packets.data();
  const std::vector<uint32_t>& sizes = packets.sizes();
  if (closed_.load(std::memory_order_acquire) || udp == nullptr) {
    size_t off = 0;
    for (uint32_t len : sizes) {
      PassOn(rest, data + off, len);
      off += len;
    }
    return 0;
  }
  // Every datagram of the batch is built before any is sent, so that the sends happen with no
  // lock held. Room: each packet grows by header, tag and at most the padding.
  size_t need = packets.bytes() + sizes.size() * (kChannelHeader + kTransportHeader + kAeadTagLen + kPadding) + kMaxIpPacket;
  if (train_buf_.size() < need) train_buf_.resize(need);
  trains_.clear();
  const int64_t now = MonotonicNs();
  const uint32_t mtu = mtu_.load(std::memory_order_relaxed);
  size_t handled = 0;
  size_t used = 0;
  Train* train = nullptr;
  uint8_t nonce[kAeadNonceLen];
  // Packets of a burst usually share a destination: remember the last lookup.
  uint8_t last_dst[16];
  int last_version = 0;
  uint32_t last_peer_id = RouteTable::kNone;
  NativePeer* peer_cache = nullptr;
  SockAddr peer_endpoint;
  uint16_t peer_channel = 0;
  uint32_t peer_inner_mtu = 0;  // path MTU: largest inner packet the peer's path carries
  {
    std::shared_lock<std::shared_mutex> lock(mu);
    size_t off = 0;
    for (uint32_t len : sizes) {
      const uint8_t* pkt = data + off;
      off += len;
      int version = len > 0 ? pkt[0] >> 4 : 0;
      const uint8_t* dst;
      size_t alen;
      if (version == 4 && len >= 20) {
        dst = pkt + 16;
        alen = 4;
      } else if (version == 6 && len >= 40) {
        dst = pkt + 24;
        alen = 16;
      } else {
        counters.no_route.fetch_add(1, std::memory_order_relaxed);
        handled++;
        continue;
      }
      uint32_t peer_id;
      if (version == last_version && memcmp(dst, last_dst, alen) == 0) {
        peer_id = last_peer_id;
      } else {
        peer_id = version == 4 ? routes.Lookup4(dst) : routes.Lookup6(dst);
        memcpy(last_dst, dst, alen);
        last_version = version;
        last_peer_id = peer_id;
      }
      if (peer_id == RouteTable::kNone) {
        // No peer owns the destination: JavaScript would drop it too.
        counters.no_route.fetch_add(1, std::memory_order_relaxed);
        handled++;
        continue;
      }
      if (peer_cache == nullptr || peer_cache->id != peer_id) {
        auto it = peers.find(peer_id);
        peer_cache = it == peers.end() ? nullptr : it->second.get();
        if (peer_cache != nullptr) {
          std::lock_guard<std::mutex> ep(peer_cache->endpoint_mu);
          peer_endpoint = peer_cache->endpoint;
          peer_channel = peer_cache->channel;
        }
        // ---- path MTU (pmtu.h, icmp_too_big.h) ----
        // A relayed peer's datagrams carry a 4-byte ChannelData header to the TURN server.
        if (peer_endpoint.len != 0) {
          uint32_t outer = udp->pmtu().Get(peer_endpoint);
          peer_inner_mtu = InnerMtuForPath(peer_channel != 0 && outer > 4 ? outer - 4 : outer, peer_endpoint.family());
        } else {
          peer_inner_mtu = 0;
        }
      }
      NativePeer* peer = peer_cache;
      NativeKeypair* kp = peer == nullptr ? nullptr : peer->current.get();
      if (kp == nullptr || peer_endpoint.len == 0 || now - kp->created_ns >= reject_after_time_ns) {
        // No session (or nowhere to send): JavaScript queues the packet and starts a handshake.
        counters.tx_passed.fetch_add(1, std::memory_order_relaxed);
        PassOn(rest, pkt, len);
        continue;
      }
      // ---- path MTU: too big for the peer's path: answered with ICMP (icmp_too_big.h); the
      // packet still goes, fragmented outside, so a host that filters ICMP is not cut off ----
      if (too_big_.Check(pkt, len, peer_inner_mtu, now)) counters.too_big.fetch_add(1, std::memory_order_relaxed);
      // ---- MSS clamp (mss_clamp.h): SYNs leaving through the tunnel ----
      ClampSyn(packets.mutable_data() + (pkt - data), len, peer_inner_mtu, /*arriving=*/false);
      uint64_t counter = kp->send_counter.fetch_add(1, std::memory_order_relaxed);
      if (counter >= reject_after_messages) {
        kp->send_counter.store(reject_after_messages, std::memory_order_relaxed);
        counters.tx_passed.fetch_add(1, std::memory_order_relaxed);
        PassOn(rest, pkt, len);
        continue;
      }
      size_t padded = PaddedLength(len, mtu);
      // A relayed peer gets its datagrams wrapped as ChannelData, to the TURN server.
      size_t pre = peer_channel != 0 ? kChannelHeader : 0;
      size_t dgram = pre + kTransportHeader + padded + kAeadTagLen;
      // A train is one GSO send: one destination, equal sizes (the last may be shorter).
      if (train == nullptr || train->peer != peer || train->short_last || dgram > train->seg ||
          train->count == kMaxGsoSegments || train->total + dgram > kMaxGsoBytes) {
        trains_.emplace_back();
        train = &trains_.back();
        train->peer = peer;
        train->to = peer_endpoint;
        train->offset = used;
        train->seg = dgram;
      }
      uint8_t* out = train_buf_.data() + used;
      if (pre != 0) {
        size_t inner_len = dgram - kChannelHeader;
        out[0] = static_cast<uint8_t>(peer_channel >> 8);
        out[1] = static_cast<uint8_t>(peer_channel);
        out[2] = static_cast<uint8_t>(inner_len >> 8);
        out[3] = static_cast<uint8_t>(inner_len);
        out += pre;
      }
      out[0] = kMessageTransport;
      out[1] = out[2] = out[3] = 0;
      StoreLe32(out + 4, kp->remote_index);
      StoreLe64(out + 8, counter);
      CounterNonce(counter, nonce);
      if (!send_aead_.Seal(kp->send_key, nonce, pkt, len, padded - len, out + kTransportHeader)) {
        counters.crypto_errors.fetch_add(1, std::memory_order_relaxed);
        handled++;
        continue;
      }
      used += dgram;
      train->total += dgram;
      train->count++;
      if (dgram < train->seg) train->short_last = true;
      peer->tx_bytes.fetch_add(dgram, std::memory_order_relaxed);
      peer->last_sent_ns.store(now, std::memory_order_relaxed);
      if (len > 0) peer->last_data_sent_ns.store(now, std::memory_order_relaxed);
      counters.tx_packets.fetch_add(1, std::memory_order_relaxed);
      handled++;
    }
  }
  for (const Train& t : trains_) {
    size_t failed = udp->SendTrain(t.to, train_buf_.data() + t.offset, t.total, t.seg);
    if (failed > 0) counters.send_failed.fetch_add(failed, std::memory_order_relaxed);
    counters.tx_trains.fetch_add(1, std::memory_order_relaxed);
  }
  if (!trains_.empty()) PushActivity();
  return handled;
}

void DataPathCore::ClampSyn(uint8_t* pkt, size_t len, uint32_t inner_mtu, bool arriving) {
  int32_t setting = mss_clamp_.load(std::memory_order_relaxed);
  if (setting == kMssClampOff || !IsTcpSyn(pkt, len)) return;
  if (arriving && setting == kMssClampAuto) {
    // Arriving SYN: its sender is the peer that owns the source address; same path back.
    uint32_t owner = (pkt[0] >> 4) == 4 ? routes.Lookup4(pkt + 12) : routes.Lookup6(pkt + 8);
    auto it = peers.find(owner);
    if (it != peers.end()) inner_mtu = PeerInnerMtu(it->second.get());
  }
  uint32_t limit = MssLimit(setting, pkt[0] >> 4, inner_mtu, mtu_.load(std::memory_order_relaxed));
  if (ClampMss(pkt, len, limit)) counters.mss_clamped.fetch_add(1, std::memory_order_relaxed);
}

uint32_t DataPathCore::PeerInnerMtu(NativePeer* peer) {
  SockAddr endpoint;
  uint16_t channel;
  {
    std::lock_guard<std::mutex> ep(peer->endpoint_mu);
    endpoint = peer->endpoint;
    channel = peer->channel;
  }
  std::shared_ptr<UdpSockets> udp;
  {
    std::lock_guard<std::mutex> lock(udp_mu_);
    udp = udp_.lock();
  }
  if (endpoint.len == 0 || udp == nullptr) return 0;
  uint32_t outer = udp->pmtu().Get(endpoint);
  return InnerMtuForPath(channel != 0 && outer > 4 ? outer - 4 : outer, endpoint.family());
}

void DataPathCore::PushActivity() {
  // One event until JavaScript has read the activity (activity() re-arms), so a busy path
  // wakes JavaScript no more often than it takes reports.
  if (activity_armed_.exchange(false, std::memory_order_acq_rel)) Emit(kEventActivity, 0, 0);
}

size_t DataPathCore::HandleDatagrams(std::vector<DatagramRef>& datagrams, std::vector<DatagramRef>* rest) {
  std::lock_guard<std::mutex> side(recv_mu_);
  if (closed_.load(std::memory_order_acquire) || !tun_fd_) {
    if (rest != nullptr) rest->insert(rest->end(), datagrams.begin(), datagrams.end());
    return 0;
  }
  const int64_t now = MonotonicNs();
  size_t handled = 0;
  uint8_t nonce[kAeadNonceLen];
  const SockAddr* last_from = nullptr;
  NativePeer* last_from_peer = nullptr;
  {
    std::shared_lock<std::shared_mutex> lock(mu);
    for (DatagramRef& d : datagrams) {
      uint8_t* m = d.data;
      size_t mlen = d.len;
      // A transport message relayed by a TURN server arrives as ChannelData: unwrapped here.
      // Anything else in ChannelData (handshakes, STUN from the peer) goes up whole, to the
      // TURN client in JavaScript.
      bool relayed = false;
      if (mlen >= kChannelHeader + kTransportHeader + kAeadTagLen && m[0] >= 0x40 && m[0] <= 0x4f) {
        size_t clen = LoadBe16(m + 2);
        const uint8_t* w = m + kChannelHeader;
        if (clen + kChannelHeader <= mlen && clen >= kTransportHeader + kAeadTagLen && w[0] == kMessageTransport &&
            w[1] == 0 && w[2] == 0 && w[3] == 0) {
          m += kChannelHeader;
          mlen = clen;
          relayed = true;
        }
      }
      if (mlen < kTransportHeader + kAeadTagLen || m[0] != kMessageTransport || m[1] != 0 || m[2] != 0 || m[3] != 0) {
        // Handshake messages, cookie replies, STUN and anything malformed: JavaScript's business.
        counters.rx_passed.fetch_add(1, std::memory_order_relaxed);
        if (rest != nullptr) rest->push_back(d);
        continue;
      }
      handled++;
      uint32_t receiver = LoadLe32(m + 4);
      uint64_t counter = LoadLe64(m + 8);
      auto it = index.find(receiver);
      if (it == index.end()) {
        counters.unknown_index.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      NativeKeypair* kp = it->second.get();
      if (now - kp->created_ns >= reject_after_time_ns || counter >= reject_after_messages) {
        counters.expired.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      size_t plain = mlen - kTransportHeader - kAeadTagLen;
      uint8_t* inner = m + kTransportHeader;
      CounterNonce(counter, nonce);
      if (!recv_aead_.Open(kp->recv_key, nonce, inner, plain, inner)) {
        counters.decrypt_failed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (!kp->replay.Check(counter, reject_after_messages)) {
        counters.replayed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      NativePeer* peer = kp->peer;
      if (peer->next.get() == kp &&
          (confirm_.empty() || confirm_.back().second != kp->local_index)) {
        confirm_.emplace_back(peer->id, kp->local_index);
      }
      // Roaming: the peer's endpoint follows the source of its authenticated packets. A relayed
      // path is chosen by ICE, not by where packets come from.
      if (!relayed && (d.from != last_from || peer != last_from_peer)) {
        std::lock_guard<std::mutex> ep(peer->endpoint_mu);
        if (!SameSockAddr(peer->endpoint, *d.from) || peer->channel != 0) {
          peer->endpoint = *d.from;
          peer->channel = 0;
          peer->endpoint_changed.store(true, std::memory_order_relaxed);
        }
        last_from = d.from;
        last_from_peer = peer;
      }
      peer->rx_bytes.fetch_add(mlen, std::memory_order_relaxed);
      peer->last_recv_ns.store(now, std::memory_order_relaxed);
      if (plain == 0) {
        counters.rx_keepalives.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      size_t ilen = InnerLength(inner, plain);
      if (ilen == 0) {
        counters.bad_inner.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // Cryptokey routing, inbound: the inner source must be one of the sender's AllowedIPs.
      uint32_t owner = (inner[0] >> 4) == 4 ? routes.Lookup4(inner + 12) : routes.Lookup6(inner + 8);
      if (owner != peer->id) {
        counters.source_rejected.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      peer->last_data_recv_ns.store(now, std::memory_order_relaxed);
      counters.rx_packets.fetch_add(1, std::memory_order_relaxed);
      // ---- MSS clamp (mss_clamp.h): SYNs arriving from the tunnel ----
      ClampSyn(inner, ilen, 0, /*arriving=*/true);
      writer_.Add(inner, ilen);
    }
  }
  if (!confirm_.empty()) {
    // The responder's new keypair is confirmed by the first packet under it: from now on it
    // is the one to send with. JavaScript hears of it and follows.
    {
      std::unique_lock<std::shared_mutex> lock(mu);
      for (const auto& c : confirm_) {
        auto p = peers.find(c.first);
        auto k = index.find(c.second);
        if (p == peers.end() || k == index.end()) continue;
        NativePeer* peer = p->second.get();
        if (peer->next != k->second) continue;
        // The old previous falls out of the slots: it is retired here, as the control plane
        // retires it, so no packet opens under it any more and its index entry does not linger.
        std::shared_ptr<NativeKeypair> retired = peer->previous;
        peer->previous = peer->current;
        peer->current = peer->next;
        peer->next.reset();
        if (retired) {
          auto r = index.find(retired->local_index);
          if (r != index.end() && r->second == retired) index.erase(r);
        }
      }
    }
    for (const auto& c : confirm_) Emit(kEventConfirmed, c.first, c.second);
    confirm_.clear();
  }
  if (handled > 0) PushActivity();
  writer_.Flush(tun_fd_->get(), &write_stats_, tun_fd_->sink());
  counters.tun_writes.store(write_stats_.writes, std::memory_order_relaxed);
  counters.tun_coalesced.store(write_stats_.coalesced, std::memory_order_relaxed);
  counters.tun_write_dropped.store(write_stats_.dropped, std::memory_order_relaxed);
  return handled;
}

// ---- JavaScript class --------------------------------------------------------------------------

void DeliverDataPathEvent(Napi::Env env, Napi::Function callback, std::nullptr_t* /*context*/, DataPathEvent* event) {
  std::unique_ptr<DataPathEvent> owned(event);
  if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;
  callback.Call({Napi::Number::New(env, event->type), Napi::Number::New(env, event->peer_id),
                 Napi::Number::New(env, event->local_index)});
}

namespace {

Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ReadU32(const Napi::Value& v, uint32_t* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d))) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

bool ReadKey(const Napi::Value& v, uint8_t out[kAeadKeyLen]) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return false;
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  if (a.ByteLength() != kAeadKeyLen) return false;
  memcpy(out, a.Data(), kAeadKeyLen);
  return true;
}

Napi::Object Unwrappable(const Napi::Value& v, Napi::FunctionReference& ctor, bool* ok) {
  *ok = v.IsObject() && !ctor.IsEmpty() && v.As<Napi::Object>().InstanceOf(ctor.Value());
  return *ok ? v.As<Napi::Object>() : Napi::Object();
}

}  // namespace

Napi::Function DataPath::Define(Napi::Env env) {
  return DefineClass(env, "DataPath",
                     {
                         InstanceMethod<&DataPath::SetUdp>("setUdp"),
                         InstanceMethod<&DataPath::SetPeer>("setPeer"),
                         InstanceMethod<&DataPath::RemovePeer>("removePeer"),
                         InstanceMethod<&DataPath::SetEndpoint>("setEndpoint"),
                         InstanceMethod<&DataPath::Endpoint>("endpoint"),
                         InstanceMethod<&DataPath::SetKeypairs>("setKeypairs"),
                         InstanceMethod<&DataPath::SetAllowedIps>("setAllowedIps"),
                         InstanceMethod<&DataPath::Counter>("counter"),
                         InstanceMethod<&DataPath::TakeCounter>("takeCounter"),
                         InstanceMethod<&DataPath::SetCounter>("setCounter"),
                         InstanceMethod<&DataPath::SetMtu>("setMtu"),
                         InstanceMethod<&DataPath::SetMssClamp>("setMssClamp"),
                         InstanceMethod<&DataPath::Activity>("activity"),
                         InstanceMethod<&DataPath::Stats>("stats"),
                         InstanceMethod<&DataPath::Close>("close"),
                     });
}

DataPath::DataPath(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataPath>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  AddonData* data = env.GetInstanceData<AddonData>();
  bool ok = false;
  Napi::Object tun_obj = data == nullptr ? Napi::Object() : Unwrappable(info[0], data->tun_constructor, &ok);
  if (!ok) {
    ThrowTypeError(env, "DataPath: the first argument must be a native Tun");
    return;
  }
  if (!info[2].IsObject() || !info[3].IsFunction()) {
    ThrowTypeError(env, "DataPath(tun, udp, options, onEvent)");
    return;
  }
  TunDevice* tun = Napi::ObjectWrap<TunDevice>::Unwrap(tun_obj);
  SharedFdPtr fd = tun->fd();
  if (fd == nullptr || tun->reader() == nullptr) {
    Napi::Error::New(env, "DataPath: the Tun must be open and started").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object o = info[2].As<Napi::Object>();
  double reject_msgs = o.Get("rejectAfterMessages").IsNumber() ? o.Get("rejectAfterMessages").As<Napi::Number>().DoubleValue() : 0;
  double reject_ms = o.Get("rejectAfterTimeMs").IsNumber() ? o.Get("rejectAfterTimeMs").As<Napi::Number>().DoubleValue() : 0;
  uint32_t mtu = 0;
  if (!(reject_msgs >= 1 && reject_msgs <= 9007199254740991.0) || !(reject_ms >= 1) || !ReadU32(o.Get("mtu"), &mtu)) {
    ThrowTypeError(env, "DataPath: options need rejectAfterMessages, rejectAfterTimeMs and mtu");
    return;
  }
  core_ = std::make_shared<DataPathCore>(fd, tun->vnet(), tun->offloads(), static_cast<uint64_t>(reject_msgs),
                                         static_cast<int64_t>(reject_ms * 1e6), mtu);

  events_alive_ = std::make_shared<bool>(true);
  auto* alive = new std::shared_ptr<bool>(events_alive_);
  EventFunction events = EventFunction::New(
      env, info[3].As<Napi::Function>(), "tswg:datapath-events", 0, 1, nullptr,
      [](Napi::Env, std::shared_ptr<bool>* flag, std::nullptr_t*) {
        **flag = false;
        delete flag;
      },
      alive);
  if (env.IsExceptionPending()) return;
  events.Unref(env);
  core_->SetEvents(events);

  tun_ref_ = Napi::Persistent(tun_obj);
  tun->reader()->SetHandler(core_);
  AttachUdp(env, info[1]);
  if (env.IsExceptionPending()) {
    Shutdown();
    return;
  }
  teardown_.Arm(env_, [](void* self) { static_cast<DataPath*>(self)->Shutdown(); }, this);
}

DataPath::~DataPath() {
  // Collected without close(): no JavaScript calls are allowed here, so only stop the core;
  // the readers' handlers then pass everything on.
  if (!closed_ && core_) {
    closed_ = true;
    core_->CloseEvents();
    core_->Shutdown();
  }
  teardown_.Disarm();
}

void DataPath::Shutdown() {
  if (closed_ || !core_) return;
  closed_ = true;
  if (!tun_ref_.IsEmpty()) {
    TunDevice* tun = Napi::ObjectWrap<TunDevice>::Unwrap(tun_ref_.Value());
    if (tun != nullptr && tun->reader() != nullptr) tun->reader()->SetHandler(nullptr);
    tun_ref_.Reset();
  }
  if (!udp_ref_.IsEmpty()) {
    UdpPort* udp = Napi::ObjectWrap<UdpPort>::Unwrap(udp_ref_.Value());
    if (udp != nullptr && udp->receiver() != nullptr) udp->receiver()->SetHandler(nullptr);
    udp_ref_.Reset();
  }
  core_->CloseEvents();
  core_->Shutdown();
}

// setUdp(udp: Udp | null): sends go out of (and transport messages are taken from) these sockets.
Napi::Value DataPath::SetUdp(const Napi::CallbackInfo& info) { return AttachUdp(info.Env(), info[0]); }

Napi::Value DataPath::AttachUdp(Napi::Env env, Napi::Value arg) {
  if (closed_) return env.Undefined();
  if (!udp_ref_.IsEmpty()) {
    UdpPort* old = Napi::ObjectWrap<UdpPort>::Unwrap(udp_ref_.Value());
    if (old != nullptr && old->receiver() != nullptr) old->receiver()->SetHandler(nullptr);
    udp_ref_.Reset();
  }
  core_->SetUdp(nullptr);
  if (arg.IsNull() || arg.IsUndefined()) return env.Undefined();
  bool ok = false;
  Napi::Object obj = Unwrappable(arg, env.GetInstanceData<AddonData>()->udp_constructor, &ok);
  if (!ok) return ThrowTypeError(env, "DataPath: expected a native Udp or null");
  UdpPort* udp = Napi::ObjectWrap<UdpPort>::Unwrap(obj);
  if (udp->sockets() == nullptr || udp->receiver() == nullptr) {
    Napi::Error::New(env, "DataPath: the Udp must be open and started").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  core_->SetUdp(udp->sockets());
  udp->receiver()->SetHandler(core_);
  udp_ref_ = Napi::Persistent(obj);
  return env.Undefined();
}

Napi::Value DataPath::SetPeer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ReadU32(info[0], &id) || id == RouteTable::kNone) return ThrowTypeError(env, "DataPath.setPeer(id)");
  if (closed_) return env.Undefined();
  std::unique_lock<std::shared_mutex> lock(core_->mu);
  auto& slot = core_->peers[id];
  if (!slot) {
    slot = std::make_shared<NativePeer>();
    slot->id = id;
  }
  return env.Undefined();
}

Napi::Value DataPath::RemovePeer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ReadU32(info[0], &id)) return ThrowTypeError(env, "DataPath.removePeer(id)");
  if (closed_) return env.Undefined();
  std::unique_lock<std::shared_mutex> lock(core_->mu);
  auto it = core_->peers.find(id);
  if (it == core_->peers.end()) return env.Undefined();
  NativePeer* peer = it->second.get();
  for (auto i = core_->index.begin(); i != core_->index.end();) {
    if (i->second->peer == peer) {
      i = core_->index.erase(i);
    } else {
      ++i;
    }
  }
  core_->peers.erase(it);
  return env.Undefined();
}

// setEndpoint(id, family: 0|4|6, address: Uint8Array, port, zone, channel?): 0 forgets it. With
// a channel (0x4000-0x4FFF) the address is a TURN server's, and datagrams go as ChannelData.
Napi::Value DataPath::SetEndpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id, family, port;
  if (!ReadU32(info[0], &id) || !ReadU32(info[1], &family)) return ThrowTypeError(env, "DataPath.setEndpoint(id, family, ...)");
  SockAddr addr;
  addr.Clear();
  uint32_t channel = 0;
  if (family != 0) {
    if (!info[2].IsTypedArray() || !ReadU32(info[3], &port) || port > 65535 || !info[4].IsString()) {
      return ThrowTypeError(env, "DataPath.setEndpoint(id, family, address, port, zone)");
    }
    if (info.Length() > 5 && !info[5].IsUndefined() &&
        (!ReadU32(info[5], &channel) || (channel != 0 && (channel < 0x4000 || channel > 0x4fff)))) {
      return ThrowTypeError(env, "DataPath.setEndpoint: channel must be 0 or 0x4000-0x4FFF");
    }
    Napi::Uint8Array a = info[2].As<Napi::Uint8Array>();
    if (!MakeSockAddr(static_cast<int>(family), a.Data(), a.ByteLength(), static_cast<uint16_t>(port),
                      info[4].As<Napi::String>().Utf8Value(), &addr)) {
      addr.len = 0;
    }
  }
  if (closed_) return env.Undefined();
  std::shared_lock<std::shared_mutex> lock(core_->mu);
  auto it = core_->peers.find(id);
  if (it == core_->peers.end()) return env.Undefined();
  std::lock_guard<std::mutex> ep(it->second->endpoint_mu);
  it->second->endpoint = addr;
  it->second->channel = static_cast<uint16_t>(addr.len == 0 ? 0 : channel);
  return env.Undefined();
}

// endpoint(id) -> 24 packed bytes (see PackSockAddr), or null without one.
Napi::Value DataPath::Endpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ReadU32(info[0], &id)) return ThrowTypeError(env, "DataPath.endpoint(id)");
  if (closed_) return env.Null();
  std::shared_lock<std::shared_mutex> lock(core_->mu);
  auto it = core_->peers.find(id);
  if (it == core_->peers.end()) return env.Null();
  std::lock_guard<std::mutex> ep(it->second->endpoint_mu);
  if (it->second->endpoint.len == 0) return env.Null();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, 24);
  PackSockAddr(it->second->endpoint, out.Data());
  return out;
}

// setKeypairs(id, current, previous, next): each null or
// { localIndex, remoteIndex, sendKey, receiveKey, ageMs, sendCounter }. Keypairs already
// known by their local index keep their counters and replay windows; those no longer
// named are forgotten.
Napi::Value DataPath::SetKeypairs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  if (!ReadU32(info[0], &id)) return ThrowTypeError(env, "DataPath.setKeypairs(id, current, previous, next)");
  struct Spec {
    bool present = false;
    uint32_t local = 0, remote = 0;
    uint8_t send[kAeadKeyLen], recv[kAeadKeyLen];
    double age_ms = 0, counter = 0;
  } specs[3];
  for (int i = 0; i < 3; i++) {
    Napi::Value v = info[1 + i];
    if (v.IsNull() || v.IsUndefined()) continue;
    if (!v.IsObject()) return ThrowTypeError(env, "DataPath.setKeypairs: a keypair must be an object or null");
    Napi::Object o = v.As<Napi::Object>();
    Spec& s = specs[i];
    s.present = true;
    Napi::Value age = o.Get("ageMs"), counter = o.Get("sendCounter");
    if (!ReadU32(o.Get("localIndex"), &s.local) || !ReadU32(o.Get("remoteIndex"), &s.remote) ||
        !ReadKey(o.Get("sendKey"), s.send) || !ReadKey(o.Get("receiveKey"), s.recv) || !age.IsNumber() ||
        !counter.IsNumber()) {
      return ThrowTypeError(env, "DataPath.setKeypairs: keypair fields missing or malformed");
    }
    s.age_ms = age.As<Napi::Number>().DoubleValue();
    s.counter = counter.As<Napi::Number>().DoubleValue();
    if (!(s.counter >= 0)) s.counter = 0;
  }
  if (closed_) return env.Undefined();
  int64_t now = MonotonicNs();
  std::shared_ptr<NativeKeypair> made[3];
  std::unique_lock<std::shared_mutex> lock(core_->mu);
  auto pit = core_->peers.find(id);
  if (pit == core_->peers.end()) return env.Undefined();
  NativePeer* peer = pit->second.get();
  for (int i = 0; i < 3; i++) {
    Spec& s = specs[i];
    if (!s.present) continue;
    auto existing = core_->index.find(s.local);
    if (existing != core_->index.end() && existing->second->peer == peer &&
        memcmp(existing->second->recv_key, s.recv, kAeadKeyLen) == 0) {
      made[i] = existing->second;
    } else {
      auto kp = std::make_shared<NativeKeypair>();
      kp->local_index = s.local;
      kp->remote_index = s.remote;
      memcpy(kp->send_key, s.send, kAeadKeyLen);
      memcpy(kp->recv_key, s.recv, kAeadKeyLen);
      double counter = s.counter > static_cast<double>(core_->reject_after_messages)
                           ? static_cast<double>(core_->reject_after_messages)
                           : s.counter;
      kp->send_counter.store(static_cast<uint64_t>(counter), std::memory_order_relaxed);
      kp->created_ns = now - static_cast<int64_t>((s.age_ms > 0 ? s.age_ms : 0) * 1e6);
      kp->peer = peer;
      made[i] = kp;
    }
    Wipe(s.send, kAeadKeyLen);
    Wipe(s.recv, kAeadKeyLen);
  }
  // Forget this peer's keypairs that are no longer named, then index the named ones.
  for (const auto& old : {peer->current, peer->previous, peer->next}) {
    if (!old) continue;
    bool kept = false;
    for (const auto& k : made) kept = kept || k == old;
    auto it = core_->index.find(old->local_index);
    if (!kept && it != core_->index.end() && it->second == old) core_->index.erase(it);
  }
  for (const auto& k : made) {
    if (k) core_->index[k->local_index] = k;
  }
  peer->current = made[0];
  peer->previous = made[1];
  peer->next = made[2];
  return env.Undefined();
}

// setAllowedIps(entries: Uint8Array): 22 bytes each — family (4|6), prefix length, 16 address
// bytes (IPv4 in the first 4), peer id (little-endian 32 bits). Replaces the whole table.
Napi::Value DataPath::SetAllowedIps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[0].As<Napi::Uint8Array>().ByteLength() % 22 != 0) {
    return ThrowTypeError(env, "DataPath.setAllowedIps(entries: Uint8Array of 22-byte records)");
  }
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  RouteTable table;
  for (size_t off = 0; off < a.ByteLength(); off += 22) {
    const uint8_t* e = a.Data() + off;
    table.Insert(e[0], e + 2, e[1], LoadLe32(e + 18));
  }
  if (closed_) return env.Undefined();
  std::unique_lock<std::shared_mutex> lock(core_->mu);
  std::swap(core_->routes, table);
  return env.Undefined();
}

NativeKeypair* DataPath::FindKeypair(uint32_t local_index) {
  auto it = core_->index.find(local_index);
  return it == core_->index.end() ? nullptr : it->second.get();
}

// counter(localIndex) -> the next send counter, or -1 for a keypair not known here.
Napi::Value DataPath::Counter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t idx;
  if (!ReadU32(info[0], &idx)) return ThrowTypeError(env, "DataPath.counter(localIndex)");
  if (closed_) return Napi::Number::New(env, -1);
  std::shared_lock<std::shared_mutex> lock(core_->mu);
  NativeKeypair* kp = FindKeypair(idx);
  if (kp == nullptr) return Napi::Number::New(env, -1);
  uint64_t v = kp->send_counter.load(std::memory_order_relaxed);
  if (v > core_->reject_after_messages) v = core_->reject_after_messages;
  return Napi::Number::New(env, static_cast<double>(v));
}

// takeCounter(localIndex) -> the send counter to use now (and counts it as used), or -1.
Napi::Value DataPath::TakeCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t idx;
  if (!ReadU32(info[0], &idx)) return ThrowTypeError(env, "DataPath.takeCounter(localIndex)");
  if (closed_) return Napi::Number::New(env, -1);
  std::shared_lock<std::shared_mutex> lock(core_->mu);
  NativeKeypair* kp = FindKeypair(idx);
  if (kp == nullptr) return Napi::Number::New(env, -1);
  uint64_t v = kp->send_counter.fetch_add(1, std::memory_order_relaxed);
  if (v >= core_->reject_after_messages) {
    kp->send_counter.store(core_->reject_after_messages, std::memory_order_relaxed);
    v = core_->reject_after_messages;
  }
  return Napi::Number::New(env, static_cast<double>(v));
}

// setCounter(localIndex, value): used to retire a keypair for sending (value = the limit).
Napi::Value DataPath::SetCounter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t idx;
  if (!ReadU32(info[0], &idx) || !info[1].IsNumber()) return ThrowTypeError(env, "DataPath.setCounter(localIndex, value)");
  double v = info[1].As<Napi::Number>().DoubleValue();
  if (!(v >= 0)) v = 0;
  if (v > static_cast<double>(core_->reject_after_messages)) v = static_cast<double>(core_->reject_after_messages);
  if (closed_) return env.Undefined();
  std::shared_lock<std::shared_mutex> lock(core_->mu);
  NativeKeypair* kp = FindKeypair(idx);
  if (kp != nullptr) kp->send_counter.store(static_cast<uint64_t>(v), std::memory_order_relaxed);
  return env.Undefined();
}

Napi::Value DataPath::SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t mtu;
  if (!ReadU32(info[0], &mtu)) return ThrowTypeError(env, "DataPath.setMtu(mtu)");
  if (!closed_) core_->SetMtu(mtu);
  return env.Undefined();
}

// setMssClamp(setting): 0 off, -1 auto (from the peer's path MTU), else the largest MSS.
Napi::Value DataPath::SetMssClamp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowTypeError(env, "DataPath.setMssClamp(setting)");
  int32_t v = info[0].As<Napi::Number>().Int32Value();
  if (v < kMssClampAuto || v > 0xffff) return ThrowTypeError(env, "DataPath.setMssClamp: -1, 0 or an MSS up to 65535");
  if (!closed_) core_->SetMssClamp(v);
  return env.Undefined();
}

// activity() -> Float64Array (and re-arms the activity event), 8 numbers per peer with something new since the last call:
// id, bytes sent, bytes received (both since the last call), then how many milliseconds ago
// the last packet was sent, data packet sent, packet received, data packet received (-1:
// none since the last call), and 1 when the endpoint changed (roaming), else 0.
Napi::Value DataPath::Activity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<double> out;
  if (!closed_) {
    core_->RearmActivity();
    int64_t now = MonotonicNs();
    std::shared_lock<std::shared_mutex> lock(core_->mu);
    auto ago = [now](int64_t t, int64_t* reported) -> double {
      if (t == 0 || t == *reported) return -1;
      *reported = t;
      return static_cast<double>(now - t) / 1e6;
    };
    for (auto& entry : core_->peers) {
      NativePeer* p = entry.second.get();
      uint64_t tx = p->tx_bytes.load(std::memory_order_relaxed);
      uint64_t rx = p->rx_bytes.load(std::memory_order_relaxed);
      double sent = ago(p->last_sent_ns.load(std::memory_order_relaxed), &p->reported_sent_ns);
      double data_sent = ago(p->last_data_sent_ns.load(std::memory_order_relaxed), &p->reported_data_sent_ns);
      double recv = ago(p->last_recv_ns.load(std::memory_order_relaxed), &p->reported_recv_ns);
      double data_recv = ago(p->last_data_recv_ns.load(std::memory_order_relaxed), &p->reported_data_recv_ns);
      bool moved = p->endpoint_changed.exchange(false, std::memory_order_relaxed);
      if (tx == p->reported_tx && rx == p->reported_rx && sent < 0 && data_sent < 0 && recv < 0 && data_recv < 0 &&
          !moved) {
        continue;
      }
      out.push_back(p->id);
      out.push_back(static_cast<double>(tx - p->reported_tx));
      out.push_back(static_cast<double>(rx - p->reported_rx));
      out.push_back(sent);
      out.push_back(data_sent);
      out.push_back(recv);
      out.push_back(data_recv);
      out.push_back(moved ? 1 : 0);
      p->reported_tx = tx;
      p->reported_rx = rx;
    }
  }
  Napi::Float64Array result = Napi::Float64Array::New(env, out.size());
  if (!out.empty()) memcpy(result.Data(), out.data(), out.size() * sizeof(double));
  return result;
}

Napi::Value DataPath::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (!core_) return o;
  DataPathCounters& c = core_->counters;
  auto set = [&](const char* k, const std::atomic<uint64_t>& v) {
    o.Set(k, Napi::Number::New(env, static_cast<double>(v.load(std::memory_order_relaxed))));
  };
  set("txPackets", c.tx_packets);
  set("txTrains", c.tx_trains);
  set("txPassed", c.tx_passed);
  set("noRoute", c.no_route);
  set("sendFailed", c.send_failed);
  set("rxPackets", c.rx_packets);
  set("rxKeepalives", c.rx_keepalives);
  set("rxPassed", c.rx_passed);
  set("unknownIndex", c.unknown_index);
  set("expired", c.expired);
  set("decryptFailed", c.decrypt_failed);
  set("replayed", c.replayed);
  set("badInner", c.bad_inner);
  set("sourceRejected", c.source_rejected);
  set("cryptoErrors", c.crypto_errors);
  set("tooBig", c.too_big);
  set("mssClamped", c.mss_clamped);
  set("tunWrites", c.tun_writes);
  set("tunCoalesced", c.tun_coalesced);
  set("tunWriteDropped", c.tun_write_dropped);
  return o;
}

Napi::Value DataPath::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  teardown_.Disarm();
  return info.Env().Undefined();
}

}  // namespace tswg
