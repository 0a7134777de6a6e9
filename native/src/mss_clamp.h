// TCP MSS clamping for hosts that never hear ICMP "too big" (`MSSClamp` in [Interface]).
//
// 1. Both directions: the TUN reader clamps SYNs leaving through the tunnel, the receive side
//    clamps SYNs arriving from it, each against the peer's path (the same path carries both).
// 2. Only a TCP header directly behind the IP header (IPv4 unfragmented, IPv6 without extension
//    headers) is looked at; the MSS option is only ever lowered.
// 3. The TCP checksum is patched incrementally (RFC 1624) over the 16-bit words the option
//    value touches, so an odd offset inside the options works too.
#ifndef TSWG_MSS_CLAMP_H_
#define TSWG_MSS_CLAMP_H_

#include <stddef.h>
#include <stdint.h>

namespace tswg {

// The setting as JavaScript hands it over: off, auto (from the path MTU) or a fixed MSS.
constexpr int32_t kMssClampOff = 0;
constexpr int32_t kMssClampAuto = -1;

// Whether `pkt` is a TCP segment with SYN set (cheap; the caller then works out the limit).
bool IsTcpSyn(const uint8_t* pkt, size_t len);

// The largest MSS for a SYN of IP version `version` under `setting`, where the peer's path
// carries inner packets of up to `inner_mtu` bytes (0: unknown, then `fallback_mtu` is used);
// 0 means leave it alone.
uint32_t MssLimit(int32_t setting, int version, uint32_t inner_mtu, uint32_t fallback_mtu);

// Lowers the MSS option of a TCP SYN in `pkt` to `max_mss`; true when it changed something.
bool ClampMss(uint8_t* pkt, size_t len, uint32_t max_mss);

}  // namespace tswg

#endif  // TSWG_MSS_CLAMP_H_
