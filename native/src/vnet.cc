#include "vnet.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "checksum.h"

namespace tswg {

// Where the IP addresses sit and how long they are.
struct IpLayout {
  int version;
  size_t addr_off;
  size_t addr_len;
};

// A segment that may be joined with its neighbours: plain IPv4 (no options, not a fragment)
// or IPv6 without extension headers; for TCP only ACK (and maybe PSH) set; and data.
struct SegmentView {
  IpLayout ip;
  uint8_t proto;
  size_t iphl;
  size_t thl;  // transport header length (8 for UDP)
  size_t payload;
  uint32_t seq;  // TCP only
  uint8_t flags;  // TCP only
};

namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpCwr = 0x80;
// Joined packets per write: enough for a 64 KiB burst of 1 KiB segments.
constexpr uint32_t kMaxSegmentsPerWrite = 64;
// Flows joined at once within one burst; further flows go out packet by packet.
constexpr size_t kMaxGroups = 8;

bool IpLayoutOf(const uint8_t* pkt, size_t len, IpLayout* out) {
  if (len < 1) return false;
  int version = pkt[0] >> 4;
  if (version == 4 && len >= 20) {
    *out = {4, 12, 4};
    return true;
  }
  if (version == 6 && len >= 40) {
    *out = {6, 8, 16};
    return true;
  }
  return false;
}

// Writes the IP length field(s) for a packet that is now `total` bytes long.
void SetIpLength(uint8_t* ip, const IpLayout& l, size_t total) {
  if (l.version == 4) {
    StoreBe16(ip + 2, static_cast<uint16_t>(total));
    SetIpv4HeaderChecksum(ip, (ip[0] & 0x0f) * 4u);
  } else {
    StoreBe16(ip + 4, static_cast<uint16_t>(total - 40));
  }
}

// Full transport checksum of the packet at `ip`, transport header at `t_off`.
void SetTransportChecksum(uint8_t* ip, const IpLayout& l, size_t t_off, size_t total,
                          uint8_t protocol, size_t csum_field) {
  uint8_t* t = ip + t_off;
  t[csum_field] = 0;
  t[csum_field + 1] = 0;
  size_t tlen = total - t_off;
  uint64_t sum = PseudoHeaderSum(ip + l.addr_off, ip + l.addr_off + l.addr_len, l.addr_len, protocol,
                                 static_cast<uint32_t>(tlen));
  uint16_t c = static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(t, tlen, sum)));
  // In UDP a zero checksum means "none"; a computed zero is sent as all ones.
  if (protocol == kProtoUdp && c == 0) c = 0xffff;
  StoreChecksum(t + csum_field, c);
}

}  // namespace

SplitResult SplitVnetPacket(const VirtioNetHdr& hdr, const uint8_t* pkt, size_t len,
                            PacketBatch* out) {
  IpLayout l;
  if (!IpLayoutOf(pkt, len, &l)) return SplitResult::kMalformed;
  uint8_t gso = hdr.gso_type & static_cast<uint8_t>(~kGsoEcn);

  if (gso == kGsoNone) {
    if (!out->Reserve(len)) return SplitResult::kNoMemory;
    uint8_t* dst = out->Tail();
    memcpy(dst, pkt, len);
    if (hdr.flags & kVnetFlagNeedsCsum) {
      // The kernel left the checksum to us: the field holds the pseudo-header sum, and summing
      // from csum_start over everything (that field included) yields the final value.
      size_t start = hdr.csum_start;
      size_t field = start + hdr.csum_offset;
      if (start >= len || field + 2 > len) return SplitResult::kMalformed;
      StoreChecksum(dst + field, static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(dst + start, len - start, 0))));
    }
    out->Commit(len);
    return SplitResult::kOk;
  }

  bool tcp = gso == kGsoTcpV4 || gso == kGsoTcpV6;
  if (!tcp && gso != kGsoUdpL4) return SplitResult::kMalformed;
  if ((gso == kGsoTcpV4 && l.version != 4) || (gso == kGsoTcpV6 && l.version != 6)) {
    return SplitResult::kMalformed;
  }
  // The transport header starts where the kernel says the checksum starts.
  size_t t_off = hdr.csum_start;
  size_t min_ip = l.version == 4 ? (pkt[0] & 0x0f) * 4u : 40u;
  if (t_off < min_ip || t_off + (tcp ? 20u : 8u) > len) return SplitResult::kMalformed;
  size_t t_len = tcp ? (pkt[t_off + 12] >> 4) * 4u : 8u;
  if (t_len < (tcp ? 20u : 8u)) return SplitResult::kMalformed;
  size_t headers = t_off + t_len;
  if (headers > len) return SplitResult::kMalformed;
  size_t payload = len - headers;
  size_t mss = hdr.gso_size;
  if (mss == 0) return SplitResult::kMalformed;
  uint8_t protocol = tcp ? kProtoTcp : kProtoUdp;
  size_t csum_field = tcp ? 16 : 6;

  uint32_t seq0 = tcp ? LoadBe32(pkt + t_off + 4) : 0;
  uint16_t id0 = l.version == 4 ? LoadBe16(pkt + 4) : 0;
  size_t segments = payload == 0 ? 1 : (payload + mss - 1) / mss;
  for (size_t i = 0; i < segments; i++) {
    size_t off = i * mss;
    size_t seg = payload - off < mss ? payload - off : mss;
    size_t total = headers + seg;
    if (!out->Reserve(total)) return SplitResult::kNoMemory;
    uint8_t* dst = out->Tail();
    memcpy(dst, pkt, headers);
    memcpy(dst + headers, pkt + headers + off, seg);
    if (l.version == 4) StoreBe16(dst + 4, static_cast<uint16_t>(id0 + i));
    SetIpLength(dst, l, total);
    uint8_t* t = dst + t_off;
    if (tcp) {
      StoreBe32(t + 4, seq0 + static_cast<uint32_t>(off));
      // FIN and PSH belong to the last segment, CWR to the first.
      if (i + 1 < segments) t[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
      if (i > 0) t[13] &= static_cast<uint8_t>(~kTcpCwr);
    } else {
      StoreBe16(t + 4, static_cast<uint16_t>(8 + seg));
    }
    SetTransportChecksum(dst, l, t_off, total, protocol, csum_field);
    out->Commit(total);
  }
  return SplitResult::kOk;
}

// ---- coalescing ------------------------------------------------------------------------------

namespace {

// Parses the IP header and says which transport protocol follows; false when the packet is
// anything but plain TCP or UDP that could be joined.
bool ParseIp(const uint8_t* p, size_t len, SegmentView* v) {
  if (!IpLayoutOf(p, len, &v->ip)) return false;
  if (v->ip.version == 4) {
    if ((p[0] & 0x0f) != 5 || LoadBe16(p + 2) != len) return false;
    if ((LoadBe16(p + 6) & 0x3fff) != 0) return false;  // a fragment
    v->proto = p[9];
    v->iphl = 20;
  } else {
    if (LoadBe16(p + 4) + 40u != len) return false;
    v->proto = p[6];
    v->iphl = 40;
  }
  return v->proto == kProtoTcp || v->proto == kProtoUdp;
}

bool ParseJoinable(const uint8_t* p, size_t len, SegmentView* v) {
  if (!ParseIp(p, len, v)) return false;
  const uint8_t* t = p + v->iphl;
  if (v->proto == kProtoUdp) {
    if (len < v->iphl + 8 || LoadBe16(t + 4) != len - v->iphl) return false;
    v->thl = 8;
    v->payload = len - v->iphl - 8;
    v->seq = 0;
    v->flags = 0;
    return v->payload > 0;
  }
  if (len < v->iphl + 20) return false;
  v->thl = (t[12] >> 4) * 4u;
  if (v->thl < 20 || v->iphl + v->thl >= len) return false;
  v->flags = t[13];
  if ((v->flags & static_cast<uint8_t>(~kTcpPsh)) != kTcpAck) return false;
  v->payload = len - v->iphl - v->thl;
  v->seq = LoadBe32(t + 4);
  return true;
}

// Same addresses, protocol and ports.
bool SameFlow(const uint8_t* a, const uint8_t* b, const SegmentView& va, const SegmentView& vb) {
  if (va.ip.version != vb.ip.version || va.proto != vb.proto) return false;
  size_t addrs = 2 * va.ip.addr_len;
  return memcmp(a + va.ip.addr_off, b + va.ip.addr_off, addrs) == 0 && memcmp(a + va.iphl, b + vb.iphl, 4) == 0;
}

// Header fields that must agree for two segments to travel as one.
bool SameHeaders(const uint8_t* a, const uint8_t* b, const SegmentView& va, const SegmentView& vb) {
  if (va.thl != vb.thl) return false;
  if (va.ip.version == 4) {
    if (a[1] != b[1] || a[8] != b[8] || (a[6] & 0xe0) != (b[6] & 0xe0)) return false;
  } else {
    if (memcmp(a, b, 4) != 0 || a[7] != b[7]) return false;
  }
  if (va.proto == kProtoUdp) return true;
  const uint8_t* ta = a + va.iphl;
  const uint8_t* tb = b + vb.iphl;
  return memcmp(ta + 8, tb + 8, 4) == 0 &&           // acknowledgement
         memcmp(ta + 14, tb + 14, 2) == 0 &&         // window
         memcmp(ta + 18, tb + 18, 2) == 0 &&         // urgent pointer
         memcmp(ta + 20, tb + 20, va.thl - 20) == 0;  // options, timestamps included
}

}  // namespace

struct TunWriter::Group {
  std::vector<uint8_t> buf;  // virtio header + the joined packet
  const uint8_t* first = nullptr;
  size_t first_len = 0;
  bool copied = false;
  size_t len = 0;  // bytes of the IP packet in buf
  SegmentView view{};
  uint32_t next_seq = 0;
  size_t mss = 0;
  size_t last_payload = 0;
  uint32_t segments = 0;
  bool closed = false;
  bool psh = false;

  const uint8_t* head() const { return copied ? buf.data() + kVnetHdrLen : first; }
};

TunWriter::TunWriter(bool vnet, unsigned offloads) : vnet_(vnet), offloads_(vnet ? offloads : 0) {
  units_.reserve(256);
  if (vnet_) {
    groups_.resize(kMaxGroups);
    for (auto& g : groups_) g.buf.resize(kVnetHdrLen + kMaxIpPacket);
  }
}

TunWriter::~TunWriter() = default;

bool TunWriter::MayJoin(const SegmentKind& k) const {
  unsigned need = k.proto == kProtoTcp ? (k.version == 4 ? kOffloadTso4 : kOffloadTso6)
                                       : (k.version == 4 ? kOffloadUso4 : kOffloadUso6);
  return (offloads_ & need) != 0;
}

bool TunWriter::TryJoin(Group& g, const uint8_t* pkt, size_t len, const SegmentView& v) {
  if (g.psh || g.last_payload != g.mss || v.payload > g.mss) return false;
  if (v.proto == kProtoTcp && v.seq != g.next_seq) return false;
  if (g.segments >= kMaxSegmentsPerWrite || g.len + v.payload > kMaxIpPacket) return false;
  if (!SameHeaders(g.head(), pkt, g.view, v)) return false;
  if (!g.copied) {
    memcpy(g.buf.data() + kVnetHdrLen, g.first, g.first_len);
    g.copied = true;
  }
  memcpy(g.buf.data() + kVnetHdrLen + g.len, pkt + v.iphl + v.thl, v.payload);
  g.len += v.payload;
  g.next_seq += static_cast<uint32_t>(v.payload);
  g.last_payload = v.payload;
  g.segments++;
  if (v.proto == kProtoTcp && (v.flags & kTcpPsh)) g.psh = true;
  return true;
}

void TunWriter::Add(const uint8_t* pkt, size_t len) {
  SegmentView v;
  if (offloads_ == 0 || !ParseIp(pkt, len, &v)) {
    units_.push_back({pkt, static_cast<uint32_t>(len), -1});
    return;
  }
  bool joinable = MayJoin({v.ip.version, v.proto}) && ParseJoinable(pkt, len, &v);
  // The open group of the packet's flow, if any (ports are in place for TCP and UDP alike).
  Group* g = nullptr;
  if (len >= v.iphl + 4) {
    for (size_t i = 0; i < groups_used_ && g == nullptr; i++) {
      Group& c = groups_[i];
      if (!c.closed && SameFlow(c.head(), pkt, c.view, v)) g = &c;
    }
  }
  if (g != nullptr) {
    if (joinable && TryJoin(*g, pkt, len, v)) return;
    // Whatever follows must not overtake what is queued for the flow: the group ends here.
    g->closed = true;
  }
  if (!joinable || groups_used_ == groups_.size()) {
    units_.push_back({pkt, static_cast<uint32_t>(len), -1});
    return;
  }
  Group& n = groups_[groups_used_];
  n.first = pkt;
  n.first_len = len;
  n.copied = false;
  n.len = len;
  n.view = v;
  n.next_seq = v.seq + static_cast<uint32_t>(v.payload);
  n.mss = v.payload;
  n.last_payload = v.payload;
  n.segments = 1;
  n.closed = false;
  n.psh = v.proto == kProtoTcp && (v.flags & kTcpPsh) != 0;
  units_.push_back({pkt, static_cast<uint32_t>(len), static_cast<int>(groups_used_)});
  groups_used_++;
}

void TunWriter::Close(Group& g) {
  // A joined packet: fix the lengths, and leave the transport checksum to the kernel
  // (NEEDS_CSUM) seeded with the pseudo-header sum, as a GSO packet must be.
  uint8_t* ip = g.buf.data() + kVnetHdrLen;
  const SegmentView& v = g.view;
  SetIpLength(ip, v.ip, g.len);
  uint8_t* t = ip + v.iphl;
  size_t csum_field = v.proto == kProtoTcp ? 16 : 6;
  if (v.proto == kProtoTcp) {
    if (g.psh) t[13] |= kTcpPsh;
  } else {
    StoreBe16(t + 4, static_cast<uint16_t>(g.len - v.iphl));
  }
  uint16_t seed = ChecksumFold(PseudoHeaderSum(ip + v.ip.addr_off, ip + v.ip.addr_off + v.ip.addr_len,
                                               v.ip.addr_len, v.proto,
                                               static_cast<uint32_t>(g.len - v.iphl)));
  StoreChecksum(t + csum_field, seed);
  VirtioNetHdr h;
  h.flags = kVnetFlagNeedsCsum;
  h.gso_type = v.proto == kProtoUdp ? kGsoUdpL4 : v.ip.version == 4 ? kGsoTcpV4 : kGsoTcpV6;
  h.hdr_len = static_cast<uint16_t>(v.iphl + v.thl);
  h.gso_size = static_cast<uint16_t>(g.mss);
  h.csum_start = static_cast<uint16_t>(v.iphl);
  h.csum_offset = static_cast<uint16_t>(csum_field);
  memcpy(g.buf.data(), &h, sizeof(h));
}

void TunWriter::Finish(std::vector<Unit>* units) {
  for (const UnitRef& u : units_) {
    Unit out;
    memset(&out.hdr, 0, sizeof(out.hdr));
    if (u.group >= 0 && groups_[u.group].segments > 1) {
      Group& g = groups_[u.group];
      Close(g);
      memcpy(&out.hdr, g.buf.data(), sizeof(out.hdr));
      out.data = g.buf.data() + kVnetHdrLen;
      out.len = g.len;
      out.segments = g.segments;
    } else {
      // Decrypted packets were authenticated by Poly1305, a far stronger check than the
      // transport checksum; like the kernel's WireGuard, tell the stack not to redo it.
      out.hdr.flags = kVnetFlagDataValid;
      out.data = u.data;
      out.len = u.len;
      out.segments = 1;
    }
    units->push_back(out);
  }
}

void TunWriter::Reset() {
  units_.clear();
  groups_used_ = 0;
}

bool TunWriter::IsPacketSocket(int fd) {
  if (fd != probed_fd_) {
    int type = 0;
    socklen_t len = sizeof(type);
    probed_fd_ = fd;
    packet_socket_ = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  }
  return packet_socket_;
}

size_t TunWriter::UnitsAsIov(size_t from, struct iovec* iov) const {
  size_t n = units_.size() - from < kIovChunk ? units_.size() - from : kIovChunk;
  for (size_t k = 0; k < n; k++) {
    iov[k].iov_base = const_cast<uint8_t*>(units_[from + k].data);
    iov[k].iov_len = units_[from + k].len;
  }
  return n;
}

void TunWriter::SendBatched(int fd, TunWriteStats* stats) {
  struct mmsghdr msgs[kIovChunk];
  struct iovec iov[kIovChunk];
  size_t i = 0;
  while (i < units_.size()) {
    size_t n = UnitsAsIov(i, iov);
    for (size_t k = 0; k < n; k++) {
      memset(&msgs[k], 0, sizeof(msgs[k]));
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int sent = sendmmsg(fd, msgs, static_cast<unsigned>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent > 0) {
      stats->packets += static_cast<uint64_t>(sent);
      stats->writes++;
      i += static_cast<size_t>(sent);
      continue;
    }
    // A full socket (EAGAIN) drops what is left of the burst, as a full TUN queue would; any
    // other error drops the one packet it is about.
    int err = sent < 0 ? errno : EAGAIN;
    size_t dropped = err == EAGAIN ? units_.size() - i : 1;
    stats->dropped += dropped;
    stats->last_errno = err;
    i += dropped;
  }
}

void TunWriter::DeliverToSink(const PacketSinkRef& sink, TunWriteStats* stats) {
  struct iovec iov[kIovChunk];
  for (size_t i = 0; i < units_.size(); i += kIovChunk) {
    size_t n = UnitsAsIov(i, iov);
    sink.Deliver(iov, n);
    stats->packets += n;
    stats->writes++;
  }
}

void TunWriter::Flush(int fd, TunWriteStats* stats, const PacketSinkRef* sink) {
  if (units_.empty()) return;
  if (!vnet_ && sink != nullptr) {
    DeliverToSink(*sink, stats);
    Reset();
    return;
  }
  if (!vnet_ && IsPacketSocket(fd)) {
    SendBatched(fd, stats);
    Reset();
    return;
  }
  for (const UnitRef& u : units_) {
    ssize_t n;
    uint32_t segments = 1;
    if (!vnet_) {
      do {
        n = write(fd, u.data, u.len);
      } while (n < 0 && errno == EINTR);
    } else if (u.group >= 0 && groups_[u.group].segments > 1) {
      Group& g = groups_[u.group];
      Close(g);
      segments = g.segments;
      do {
        n = write(fd, g.buf.data(), kVnetHdrLen + g.len);
      } while (n < 0 && errno == EINTR);
    } else {
      VirtioNetHdr h;
      memset(&h, 0, sizeof(h));
      h.flags = kVnetFlagDataValid;
      struct iovec iov[2];
      iov[0].iov_base = &h;
      iov[0].iov_len = sizeof(h);
      iov[1].iov_base = const_cast<uint8_t*>(u.data);
      iov[1].iov_len = u.len;
      do {
        n = writev(fd, iov, 2);
      } while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
      // EIO: interface down; EINVAL: not an IP packet. Neither is fatal.
      stats->dropped += segments;
      stats->last_errno = errno;
    } else {
      stats->packets += segments;
      stats->writes++;
      stats->coalesced += segments - 1;
    }
  }
  Reset();
}

}  // namespace tswg
