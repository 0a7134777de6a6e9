#include "udp_port.h"

#include <errno.h>
#include <netinet/udp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "errno_error.h"
#include "pmtu.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace tswg {

namespace {

constexpr size_t kRecvMessages = 16;
// A GRO train is at most 64 KiB; a plain datagram can be that large too.
constexpr size_t kRecvBufferSize = 65536;
constexpr size_t kControlSize = 64;
// recvmmsg rounds per socket before polling again, so one busy socket cannot starve the other.
constexpr int kRoundsPerWake = 8;
constexpr uint32_t kMaxPending = 1024;
// Handshake messages held while JavaScript has no credit: in all, and from one address.
constexpr size_t kMaxHeld = 64;
constexpr size_t kMaxHeldPerAddress = 2;
constexpr size_t kMacSize = 16;

// A handshake initiation (type 1, 148 bytes) or response (type 2, 92 bytes) whose mac2 is not
// zero: one that claims a cookie, which only a sender that receives at its address can have.
// JavaScript checks the MACs; this only decides what is worth keeping when something must go.
bool ClaimsCookie(const uint8_t* p, uint32_t len) {
  if (len != 148 && len != 92) return false;
  if (p[0] != (len == 148 ? 1 : 2) || p[1] != 0 || p[2] != 0 || p[3] != 0) return false;
  for (uint32_t i = len - kMacSize; i < len; i++)
    if (p[i] != 0) return true;
  return false;
}

// Same address (family and address bytes of a packed address; the port may differ).
bool SameAddress(const uint8_t* a, const uint8_t* b) { return a[0] == b[0] && memcmp(a + 8, b + 8, 16) == 0; }

Napi::Value ThrowTypeError(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

// ---- receive thread ----------------------------------------------------------------------------

UdpReceiver::UdpReceiver(std::shared_ptr<UdpSockets> sockets, int max_pending, Sink sink)
    : ReaderThread(max_pending), sockets_(std::move(sockets)), sink_(std::move(sink)) {}

UdpReceiver::~UdpReceiver() { Stop(); }

int UdpReceiver::Start() {
  buffers_.resize(kRecvMessages * kRecvBufferSize);
  names_.resize(kRecvMessages);
  control_.resize(kRecvMessages * kControlSize);
  refs_.reserve(kRecvMessages * 64);
  rest_.reserve(kRecvMessages * 64);
  return StartThread();
}

int UdpReceiver::ReceiveOnce(int fd) {
  struct mmsghdr msgs[kRecvMessages];
  struct iovec iovs[kRecvMessages];
  for (size_t k = 0; k < kRecvMessages; k++) {
    iovs[k].iov_base = buffers_.data() + k * kRecvBufferSize;
    iovs[k].iov_len = kRecvBufferSize;
    memset(&msgs[k], 0, sizeof(msgs[k]));
    msgs[k].msg_hdr.msg_name = &names_[k].u;
    msgs[k].msg_hdr.msg_namelen = sizeof(names_[k].u);
    msgs[k].msg_hdr.msg_iov = &iovs[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
    msgs[k].msg_hdr.msg_control = control_.data() + k * kControlSize;
    msgs[k].msg_hdr.msg_controllen = kControlSize;
  }
  int r;
  do {
    r = recvmmsg(fd, msgs, kRecvMessages, MSG_DONTWAIT, nullptr);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    sockets_->counters().last_errno.store(errno, std::memory_order_relaxed);
    return -1;
  }
  UdpCounters& c = sockets_->counters();
  for (int k = 0; k < r; k++) {
    names_[k].len = msgs[k].msg_hdr.msg_namelen;
    uint8_t* data = buffers_.data() + k * kRecvBufferSize;
    size_t total = msgs[k].msg_len;
    size_t seg = 0;
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msgs[k].msg_hdr); cm != nullptr; cm = CMSG_NXTHDR(&msgs[k].msg_hdr, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int v;
        memcpy(&v, CMSG_DATA(cm), sizeof(v));
        if (v > 0) seg = static_cast<size_t>(v);
      }
    }
    if (seg == 0 || seg >= total) {
      refs_.push_back({data, static_cast<uint32_t>(total), &names_[k]});
      continue;
    }
    c.gro_receives.fetch_add(1, std::memory_order_relaxed);
    for (size_t off = 0; off < total; off += seg) {
      size_t len = total - off < seg ? total - off : seg;
      refs_.push_back({data + off, static_cast<uint32_t>(len), &names_[k]});
    }
  }
  return r;
}

bool UdpReceiver::HoldHandshake(const DatagramRef& d) {
  if (held_.size() >= kMaxHeld || !ClaimsCookie(d.data, d.len)) return false;
  uint8_t addr[24];
  PackSockAddr(*d.from, addr);
  size_t same = 0;
  for (const HeldDatagram& h : held_)
    if (SameAddress(h.addr, addr)) same++;
  // One address flooding with made-up mac2 values keeps at most this many places.
  if (same >= kMaxHeldPerAddress) return false;
  held_.emplace_back();
  held_.back().data.assign(d.data, d.data + d.len);
  memcpy(held_.back().addr, addr, sizeof(addr));
  return true;
}

// 1. the data path (if attached) takes the transport messages it deals with;
// 2. with a credit, what is left goes to JavaScript in one batch, held handshakes first;
// 3. without one, handshake messages that claim a cookie are held (a few per address), the
//    rest is dropped and counted.
void UdpReceiver::Dispatch() {
  if (refs_.empty() && held_.empty()) return;
  sockets_->counters().received.fetch_add(refs_.size(), std::memory_order_relaxed);
  std::shared_ptr<DatagramHandler> h = handler();
  bool credit = HasCredit();
  std::vector<DatagramRef>* onward = &refs_;
  if (h != nullptr && !refs_.empty()) {
    rest_.clear();
    size_t done = h->HandleDatagrams(refs_, &rest_);
    handled_.fetch_add(done, std::memory_order_relaxed);
    onward = &rest_;
  }
  if (!credit) {
    size_t dropped = 0;
    for (const DatagramRef& d : *onward)
      if (!HoldHandshake(d)) dropped++;
    passed_dropped_.fetch_add(dropped, std::memory_order_relaxed);
    refs_.clear();
    return;
  }
  if (!onward->empty() || !held_.empty()) {
    std::unique_ptr<DatagramBatch> batch(new DatagramBatch());
    size_t bytes = 0;
    for (const HeldDatagram& d : held_) bytes += d.data.size();
    for (const DatagramRef& d : *onward) bytes += d.len;
    batch->addrs.resize((held_.size() + onward->size()) * 24);
    if (batch->packets.Reserve(bytes == 0 ? 1 : bytes)) {
      size_t i = 0;
      for (const HeldDatagram& d : held_) {
        memcpy(batch->packets.Tail(), d.data.data(), d.data.size());
        batch->packets.Commit(d.data.size());
        memcpy(batch->addrs.data() + 24 * i++, d.addr, 24);
      }
      for (const DatagramRef& d : *onward) {
        memcpy(batch->packets.Tail(), d.data, d.len);
        batch->packets.Commit(d.len);
        PackSockAddr(*d.from, batch->addrs.data() + 24 * i++);
      }
      held_.clear();
      SpendCredit();
      if (sink_(batch.get())) batch.release();
    }
  }
  refs_.clear();
}

void UdpReceiver::Run() {
  int fds[2] = {sockets_->fd4(), sockets_->fd6()};
  while (!stopping()) {
    // Without a handler, a consumer with no credits left stops the reading: datagrams then
    // wait in (and overflow from) the socket buffer. With one, reading never stops.
    bool can_read = HasHandler() || HasCredit();
    struct pollfd p[3];
    nfds_t n = 0;
    p[n].fd = wake_fd();
    p[n].events = POLLIN;
    p[n].revents = 0;
    n++;
    for (int fd : fds) {
      if (fd < 0 || !can_read) continue;
      p[n].fd = fd;
      p[n].events = POLLIN;
      p[n].revents = 0;
      n++;
    }
    if (poll(p, n, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[0].revents & POLLIN) DrainWake();
    if (stopping()) return;
    // A credit came back: handshakes held meanwhile need not wait for the next datagram.
    if (!held_.empty() && HasCredit()) Dispatch();
    for (nfds_t i = 1; i < n; i++) {
      if (p[i].revents == 0) continue;
      for (int round = 0; round < kRoundsPerWake; round++) {
        // Without a handler, reading stops when JavaScript has no room: the socket buffer holds the rest.
        if (!HasHandler() && !HasCredit()) break;
        int r = ReceiveOnce(p[i].fd);
        Dispatch();
        if (r < static_cast<int>(kRecvMessages)) break;
        if (stopping()) return;
      }
    }
  }
}

// ---- JavaScript class ---------------------------------------------------------------------------

void DeliverDatagrams(Napi::Env env, Napi::Function callback, std::nullptr_t* /*context*/, DatagramBatch* batch) {
  std::unique_ptr<DatagramBatch> owned(batch);
  if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;
  // While the environment is torn down (a worker ending with batches queued) every allocation
  // fails and returns an empty value: the batch is dropped, nothing is written through it.
  size_t count = batch->packets.count();
  Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::Copy(env, batch->packets.data(), batch->packets.bytes());
  if (data.IsEmpty()) return;
  Napi::Uint32Array sizes = Napi::Uint32Array::New(env, count);
  if (sizes.IsEmpty()) return;
  memcpy(sizes.Data(), batch->packets.sizes().data(), count * sizeof(uint32_t));
  Napi::Uint8Array addrs = Napi::Uint8Array::New(env, batch->addrs.size());
  if (addrs.IsEmpty()) return;
  memcpy(addrs.Data(), batch->addrs.data(), batch->addrs.size());
  callback.Call({data, sizes, addrs});
}

Napi::Function UdpPort::Define(Napi::Env env) {
  return DefineClass(env, "Udp",
                     {
                         InstanceMethod<&UdpPort::Start>("start"),
                         InstanceMethod<&UdpPort::Ack>("ack"),
                         InstanceMethod<&UdpPort::Send>("send"),
                         InstanceMethod<&UdpPort::SetMark>("setMark"),
                         InstanceMethod<&UdpPort::SetPathMtu>("setPathMtu"),
                         InstanceMethod<&UdpPort::Ref>("ref"),
                         InstanceMethod<&UdpPort::Unref>("unref"),
                         InstanceMethod<&UdpPort::Close>("close"),
                         InstanceMethod<&UdpPort::Port>("port"),
                         InstanceMethod<&UdpPort::Info>("info"),
                         InstanceMethod<&UdpPort::Stats>("stats"),
                     });
}

UdpPort::UdpPort(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpPort>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    ThrowTypeError(env, "Udp: options must be an object");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  UdpOpenOptions opts;
  Napi::Value port = o.Get("port");
  if (!port.IsNumber()) {
    ThrowTypeError(env, "Udp: port must be a number");
    return;
  }
  double p = port.As<Napi::Number>().DoubleValue();
  if (!(p >= 0 && p <= 65535) || p != static_cast<double>(static_cast<uint16_t>(p))) {
    ThrowTypeError(env, "Udp: port must be an integer in 0..65535");
    return;
  }
  opts.port = static_cast<uint16_t>(p);
  Napi::Value v4 = o.Get("ipv4"), v6 = o.Get("ipv6"), a4 = o.Get("address4"), a6 = o.Get("address6"),
              buf = o.Get("bufferBytes");
  if (v4.IsBoolean()) opts.ipv4 = v4.As<Napi::Boolean>().Value();
  if (v6.IsBoolean()) opts.ipv6 = v6.As<Napi::Boolean>().Value();
  if (a4.IsString()) opts.address4 = a4.As<Napi::String>().Utf8Value();
  if (a6.IsString()) opts.address6 = a6.As<Napi::String>().Utf8Value();
  if (buf.IsNumber()) {
    double b = buf.As<Napi::Number>().DoubleValue();
    if (b >= 4096 && b <= (1 << 30)) opts.buffer_bytes = static_cast<int>(b);
  }
  if (!opts.ipv4 && !opts.ipv6) {
    ThrowTypeError(env, "Udp: IPv4 or IPv6 must be enabled");
    return;
  }
  std::string syscall;
  int err = UdpSockets::Open(opts, &sockets_, &syscall);
  if (err != 0) {
    ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
    return;
  }
  teardown_.Arm(env_, [](void* self) { static_cast<UdpPort*>(self)->Shutdown(); }, this);
}

UdpPort::~UdpPort() {
  Shutdown();
  teardown_.Disarm();
}

void UdpPort::Shutdown() {
  if (closed_) return;
  closed_ = true;
  if (receiver_) {
    receiver_->Stop();
    handled_ = receiver_->handled();
    passed_dropped_ = receiver_->passed_dropped();
  }
  receiver_.reset();
  deliver_.Abort();
  // A data path still sending holds its own reference; the sockets close after its last send.
  sockets_.reset();
}

Napi::Value UdpPort::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) {
    Napi::Error::New(env, "Udp.start: closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (deliver_.started()) {
    Napi::Error::New(env, "Udp.start: already started").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!info[0].IsFunction()) return ThrowTypeError(env, "Udp.start: callback must be a function");
  if (!info[1].IsNumber()) return ThrowTypeError(env, "Udp.start: maxPending must be a number");
  double mp = info[1].As<Napi::Number>().DoubleValue();
  if (!(mp >= 1 && mp <= kMaxPending) || mp != static_cast<double>(static_cast<uint32_t>(mp))) {
    return ThrowTypeError(env, "Udp.start: maxPending must be an integer in 1..1024");
  }
  if (!deliver_.Start(env, info[0].As<Napi::Function>(), "tswg:udp-receiver")) return env.Undefined();
  DatagramFunction deliver = deliver_.function();
  receiver_.reset(new UdpReceiver(sockets_, static_cast<int>(mp),
                                  [deliver](DatagramBatch* b) { return deliver.NonBlockingCall(b) == napi_ok; }));
  int err = receiver_->Start();
  if (err != 0) {
    receiver_.reset();
    ErrnoError(env, err, "eventfd").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value UdpPort::Ack(const Napi::CallbackInfo& info) {
  if (!closed_ && receiver_) receiver_->Acknowledge();
  return info.Env().Undefined();
}

// A destination given as (family: 4|6, address: Uint8Array, port, zone: string) from argument
// `first` on, their types checked by the caller; false when they name no usable address.
static bool ReadDestination(const Napi::CallbackInfo& info, size_t first, SockAddr* to) {
  Napi::Uint8Array addr = info[first + 1].As<Napi::Uint8Array>();
  return MakeSockAddr(info[first].As<Napi::Number>().Int32Value(), addr.Data(), addr.ByteLength(),
                      static_cast<uint16_t>(info[first + 2].As<Napi::Number>().Uint32Value()),
                      info[first + 3].As<Napi::String>().Utf8Value(), to);
}

// send(packets: Uint8Array[], family: 4|6, address: Uint8Array, port, zone: string) -> failed count
Napi::Value UdpPort::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || !info[1].IsNumber() || !info[2].IsTypedArray() || !info[3].IsNumber() ||
      !info[4].IsString()) {
    return ThrowTypeError(env, "Udp.send(packets, family, address, port, zone)");
  }
  Napi::Array packets = info[0].As<Napi::Array>();
  SockAddr to;
  if (!ReadDestination(info, 1, &to)) return ThrowTypeError(env, "Udp.send: unusable destination address");
  uint32_t count = packets.Length();
  if (closed_) return Napi::Number::New(env, count);
  std::vector<const uint8_t*> bufs;
  std::vector<size_t> lens;
  bufs.reserve(count);
  lens.reserve(count);
  uint32_t invalid = 0;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = packets.Get(i);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      invalid++;
      continue;
    }
    Napi::Uint8Array b = v.As<Napi::Uint8Array>();
    bufs.push_back(b.Data());
    lens.push_back(b.ByteLength());
  }
  size_t failed = sockets_->SendEach(to, bufs.data(), lens.data(), bufs.size());
  return Napi::Number::New(env, static_cast<double>(failed + invalid));
}

Napi::Value UdpPort::SetMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowTypeError(env, "Udp.setMark: mark must be a number");
  double m = info[0].As<Napi::Number>().DoubleValue();
  if (!(m >= 0 && m <= 4294967295.0) || m != static_cast<double>(static_cast<uint32_t>(m))) {
    return ThrowTypeError(env, "Udp.setMark: mark must be a 32-bit unsigned integer");
  }
  if (closed_) return env.Undefined();
  int err = sockets_->SetMark(static_cast<uint32_t>(m));
  if (err != 0) ErrnoError(env, err, "setsockopt(SO_MARK)").ThrowAsJavaScriptException();
  return env.Undefined();
}

// setPathMtu(family: 4|6, address: Uint8Array, port, zone: string, mtu) -> undefined
// A size confirmed by a path prober, for the sender's table (it stands until the kernel reports less).
Napi::Value UdpPort::SetPathMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsNumber() || !info[3].IsString() || !info[4].IsNumber()) {
    return ThrowTypeError(env, "Udp.setPathMtu(family, address, port, zone, mtu)");
  }
  SockAddr to;
  if (!ReadDestination(info, 0, &to)) return ThrowTypeError(env, "Udp.setPathMtu: unusable destination address");
  double mtu = info[4].As<Napi::Number>().DoubleValue();
  if (!(mtu >= 68 && mtu <= 65535) || mtu != static_cast<double>(static_cast<uint32_t>(mtu))) {
    return ThrowTypeError(env, "Udp.setPathMtu: mtu must be an integer from 68 to 65535");
  }
  if (closed_) return env.Undefined();
  sockets_->pmtu().Set(to, static_cast<uint32_t>(mtu), PmtuSource::kProbe);
  return env.Undefined();
}

Napi::Value UdpPort::Ref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!closed_) deliver_.SetRef(env, true);
  return env.Undefined();
}

Napi::Value UdpPort::Unref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!closed_) deliver_.SetRef(env, false);
  return env.Undefined();
}

Napi::Value UdpPort::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  teardown_.Disarm();
  return info.Env().Undefined();
}

Napi::Value UdpPort::Port(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), sockets_ ? sockets_->port() : 0);
}

// info(): { ipv4, ipv6, gso, gro, bufferBytes }
Napi::Value UdpPort::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("ipv4", Napi::Boolean::New(env, sockets_ && sockets_->fd4() >= 0));
  out.Set("ipv6", Napi::Boolean::New(env, sockets_ && sockets_->fd6() >= 0));
  out.Set("gso", Napi::Boolean::New(env, sockets_ && sockets_->gso()));
  out.Set("gro", Napi::Boolean::New(env, sockets_ && sockets_->gro()));
  out.Set("bufferBytes", Napi::Number::New(env, sockets_ ? sockets_->buffer_bytes() : 0));
  return out;
}

Napi::Value UdpPort::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  if (!sockets_) return out;
  UdpCounters& c = sockets_->counters();
  out.Set("received", Napi::Number::New(env, static_cast<double>(c.received.load())));
  out.Set("groReceives", Napi::Number::New(env, static_cast<double>(c.gro_receives.load())));
  out.Set("sent", Napi::Number::New(env, static_cast<double>(c.sent.load())));
  out.Set("gsoSends", Napi::Number::New(env, static_cast<double>(c.gso_sends.load())));
  out.Set("sendErrors", Napi::Number::New(env, static_cast<double>(c.send_errors.load())));
  out.Set("pmtuSplits", Napi::Number::New(env, static_cast<double>(c.pmtu_splits.load())));
  out.Set("handledNatively", Napi::Number::New(env, static_cast<double>(receiver_ ? receiver_->handled() : handled_)));
  out.Set("passedDropped",
          Napi::Number::New(env, static_cast<double>(receiver_ ? receiver_->passed_dropped() : passed_dropped_)));
  out.Set("pendingBatches", Napi::Number::New(env, receiver_ ? receiver_->pending() : 0));
  int e = c.last_errno.load();
  out.Set("lastError", e != 0 ? Napi::Value(Napi::String::New(env, ErrnoName(e))) : env.Null());
  return out;
}

}  // namespace tswg
