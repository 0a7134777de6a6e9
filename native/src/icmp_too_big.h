// "Fragmentation needed" / "packet too big" answers to inner packets that exceed a peer's path.
//
// 1. The TUN reader asks Check() for every packet it is about to seal, with the largest inner
//    packet the peer's path carries (outer path MTU - outer IP/UDP - 32 bytes of WireGuard,
//    rounded down to the 16-byte padding step). Super-packets arrive here already split, so the
//    length compared is a segment's.
// 2. Too big: IPv4 with DF set gets ICMP type 3 code 4, IPv6 (larger than 1280) ICMPv6 type 2,
//    written back into the TUN from the packet's destination address, so the sender's PMTU
//    discovery lowers its segment size. The packet itself still goes (the kernel fragments the
//    outer datagram), so a sender that filters ICMP is slowed, not cut off. IPv4 without DF, IPv6 up to 1280 and
//    ICMP errors themselves go on: the kernel fragments the outer datagram at the source.
// 3. Answers are rate-limited (a token bucket).
#ifndef TSWG_ICMP_TOO_BIG_H_
#define TSWG_ICMP_TOO_BIG_H_

#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace tswg {

// Largest inner packet that fits an outer path MTU of `path_mtu` to a destination of `outer_family`.
uint32_t InnerMtuForPath(uint32_t path_mtu, int outer_family);

// Builds the ICMP error for `pkt` into `out` (room for 1280 bytes) with `src` (4 or 16 bytes, the
// packet's family) as source; returns its length, 0 when `pkt` is not answerable.
size_t BuildTooBig(const uint8_t* pkt, size_t len, uint32_t mtu, const uint8_t* src, uint8_t* out);

struct TooBigCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> limited{0};
};

class TooBigResponder {
 public:
  static constexpr double kPerSecond = 100;
  static constexpr double kBurst = 20;

  TooBigResponder(int tun_fd, bool vnet) : tun_fd_(tun_fd), vnet_(vnet) {}
  // True when `pkt` is over the path (it was answered, or the answer was rate-limited).
  bool Check(const uint8_t* pkt, size_t len, uint32_t inner_mtu, int64_t now_ns);
  TooBigCounters& counters() { return counters_; }

 private:
  bool Take(int64_t now_ns);

  int tun_fd_;
  bool vnet_;
  double tokens_ = kBurst;
  int64_t last_ns_ = 0;
  TooBigCounters counters_;
};

}  // namespace tswg

#endif  // TSWG_ICMP_TOO_BIG_H_
