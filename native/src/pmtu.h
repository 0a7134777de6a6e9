// Per-destination path MTU of the outer (underlay) path, as the kernel knows it.
//
// 1. The UDP sockets ask for PMTU discovery with local fragmentation as the fallback
//    (IP_PMTUDISC_WANT / IPV6_PMTUDISC_WANT): DF is set, ICMP "fragmentation needed" /
//    "packet too big" from the path lowers the kernel's route-cache MTU, and a datagram larger
//    than that is fragmented at the source rather than dropped.
// 2. A GSO send whose segment exceeds the learnt MTU fails as a whole (EMSGSIZE on IPv6, EINVAL
//    on IPv4). The sender then reads the MTU the kernel learnt for that destination (a connected
//    throw-away socket, IP_MTU / IPV6_MTU) and sends such trains as single datagrams.
// 3. Entries are re-read after kRecheckMs, so a path whose MTU grows again (route-cache expiry)
//    gets GSO back. A prober (DPLPMTUD on ICE paths) may set a value from outside with Set().
#ifndef TSWG_PMTU_H_
#define TSWG_PMTU_H_

#include <stdint.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "udp_socket.h"

namespace tswg {

enum class PmtuSource : uint8_t {
  kUnknown = 0,  // nothing read yet
  kKernel = 1,   // the kernel's route / route-cache MTU for the destination
  kSendError = 2,  // re-read after a send failed with EMSGSIZE/EINVAL (an ICMP lowered it)
  kProbe = 3,    // set from outside (a path prober)
};

struct PmtuEntry {
  SockAddr to;
  uint32_t mtu = 0;  // largest outer IP packet, header included
  PmtuSource source = PmtuSource::kUnknown;
  int64_t checked_ms = 0;
};

// Sets the PMTU discovery policy described above on a UDP socket of `family` (AF_INET/AF_INET6).
void ApplyPmtuPolicy(int fd, int family);

// The kernel's path MTU towards `to` (a connected throw-away socket, IP_MTU / IPV6_MTU); 0 if unknown.
// With `interface_mtu`, also the MTU of the interface holding the local address the kernel picked
// for `to` (0 when not found): a path MTU below it was lowered by ICMP from the path.
uint32_t ReadKernelPathMtu(const SockAddr& to, uint32_t mark, uint32_t* interface_mtu = nullptr);

// Outer IP + UDP header bytes for a destination of this family.
inline size_t OuterHeaderBytes(const SockAddr& to) { return to.family() == AF_INET ? 28 : 48; }

class PathMtuTable {
 public:
  static constexpr int64_t kRecheckMs = 1000;
  static constexpr size_t kMaxEntries = 1024;

  void SetMark(uint32_t mark) { mark_ = mark; }
  // The path MTU for `to` (0 when the kernel cannot tell), re-read when stale.
  uint32_t Get(const SockAddr& to);
  // Re-reads it now, after a send failed with a size error.
  uint32_t Refresh(const SockAddr& to);
  // A value learnt elsewhere (a prober); it stands until the kernel reports something smaller.
  void Set(const SockAddr& to, uint32_t mtu, PmtuSource source);
  // Copy of the entry for `to`, without touching the kernel; false when there is none.
  bool Peek(const SockAddr& to, PmtuEntry* out);

 private:
  uint32_t ReadKernel(const SockAddr& to) const;
  PmtuEntry* Find(const SockAddr& to);
  PmtuEntry* Insert(const SockAddr& to);

  std::mutex mu_;
  // Keyed by the address bytes (AddrKey): the TUN reader looks a peer's endpoint up per batch,
  // so the lookup must not grow with the number of destinations.
  std::unordered_map<std::string, PmtuEntry> entries_;
  uint32_t mark_ = 0;
};

}  // namespace tswg

#endif  // TSWG_PMTU_H_
