#include "icmp_too_big.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/uio.h>

#include "checksum.h"

namespace tswg {

namespace {

constexpr size_t kMaxAnswer = 1280;  // an ICMPv6 error must fit the IPv6 minimum MTU
constexpr size_t kMaxAnswer4 = 576;  // RFC 1812 4.3.2.3

bool IsIcmpError(const uint8_t* pkt, size_t len) {
  int version = pkt[0] >> 4;
  if (version == 4) {
    size_t ihl = (pkt[0] & 0x0f) * 4u;
    if (pkt[9] != 1 || len < ihl + 1) return false;
    uint8_t t = pkt[ihl];
    return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
  }
  // Extension headers are not walked: an error behind one is answered, which is harmless.
  return pkt[6] == 58 && len > 40 && pkt[40] < 128;
}

}  // namespace

uint32_t InnerMtuForPath(uint32_t path_mtu, int outer_family) {
  uint32_t overhead = (outer_family == AF_INET ? 28u : 48u) + 32u;
  if (path_mtu <= overhead + 16) return 0;
  return (path_mtu - overhead) & ~15u;
}

size_t BuildTooBig(const uint8_t* pkt, size_t len, uint32_t mtu, const uint8_t* src, uint8_t* out) {
  int version = len > 0 ? pkt[0] >> 4 : 0;
  if (version == 4 && len >= 20) {
    size_t quote = len < kMaxAnswer4 - 28 ? len : kMaxAnswer4 - 28;
    size_t total = 28 + quote;
    memset(out, 0, 28);
    out[0] = 0x45;
    out[1] = 0xc0;  // internetwork control, as the kernel's own ICMP errors
    StoreBe16(out + 2, static_cast<uint16_t>(total));
    out[8] = 64;
    out[9] = 1;
    memcpy(out + 12, src, 4);
    memcpy(out + 16, pkt + 12, 4);
    SetIpv4HeaderChecksum(out, 20);
    out[20] = 3;
    out[21] = 4;
    StoreBe16(out + 26, static_cast<uint16_t>(mtu > 0xffff ? 0xffff : mtu));
    memcpy(out + 28, pkt, quote);
    StoreChecksum(out + 22, static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(out + 20, 8 + quote, 0))));
    return total;
  }
  if (version == 6 && len >= 40) {
    size_t quote = len < kMaxAnswer - 48 ? len : kMaxAnswer - 48;
    size_t icmp_len = 8 + quote;
    memset(out, 0, 48);
    out[0] = 0x60;
    StoreBe16(out + 4, static_cast<uint16_t>(icmp_len));
    out[6] = 58;
    out[7] = 64;
    memcpy(out + 8, src, 16);
    memcpy(out + 24, pkt + 8, 16);
    out[40] = 2;
    StoreBe32(out + 44, mtu);
    memcpy(out + 48, pkt, quote);
    uint64_t sum = PseudoHeaderSum(out + 8, out + 24, 16, 58, static_cast<uint32_t>(icmp_len));
    StoreChecksum(out + 42, static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(out + 40, icmp_len, sum))));
    return 40 + icmp_len;
  }
  return 0;
}

bool TooBigResponder::Take(int64_t now_ns) {
  if (last_ns_ != 0) {
    tokens_ += static_cast<double>(now_ns - last_ns_) * 1e-9 * kPerSecond;
    if (tokens_ > kBurst) tokens_ = kBurst;
  }
  last_ns_ = now_ns;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

bool TooBigResponder::Check(const uint8_t* pkt, size_t len, uint32_t inner_mtu, int64_t now_ns) {
  if (inner_mtu == 0 || len <= inner_mtu || len < 20) return false;
  int version = pkt[0] >> 4;
  uint32_t advertised = inner_mtu;
  if (version == 4) {
    if (len < 20 || (pkt[6] & 0x40) == 0) return false;  // DF clear: may be fragmented
    if (advertised < 68) return false;
  } else if (version == 6) {
    if (len < 40 || len <= 1280) return false;  // IPv6 cannot go below 1280: the outer fragments
    if (advertised < 1280) advertised = 1280;
  } else {
    return false;
  }
  if (IsIcmpError(pkt, len)) return false;
  if (!Take(now_ns)) {
    counters_.limited.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // The answer comes from the packet's own destination: Linux drops a packet arriving with one
  // of its local addresses (the tunnel's) as source as a martian, while the destination is
  // routed through this interface, so reverse-path filtering accepts it.
  const uint8_t* src = version == 4 ? pkt + 16 : pkt + 24;
  uint8_t answer[kMaxAnswer];
  size_t n = BuildTooBig(pkt, len, advertised, src, answer);
  if (n == 0) return false;
  // With IFF_VNET_HDR every write starts with a virtio header; all zero means "no offload".
  uint8_t vnet_hdr[10] = {};
  struct iovec iov[2] = {{vnet_hdr, sizeof(vnet_hdr)}, {answer, n}};
  ssize_t w = vnet_ ? writev(tun_fd_, iov, 2) : writev(tun_fd_, iov + 1, 1);
  if (w > 0) counters_.sent.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace tswg
