// TCP header options in an IP packet, rewritten in place: what the data path's MSS clamp and the
// network stack's window-scale rewrite both do. Header-only, so either addon can include it.
//
// 1. TcpOffset finds a TCP header directly behind the IP header (IPv4 unfragmented or the first
//    fragment, IPv6 without extension headers), whole within the packet.
// 2. FindTcpOption walks the options for one kind of one length; a malformed list ends the walk.
// 3. RewriteTcpBytes changes bytes of the header and patches the checksum incrementally
//    (RFC 1624, eqn. 3) over the 16-bit words they fall into, so odd offsets work too.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "checksum.h"

namespace tswg {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpOptionMss = 2;
constexpr uint8_t kTcpOptionWindowScale = 3;

// Offset of the TCP header in `pkt`, 0 when there is no whole, directly carried TCP header.
inline size_t TcpOffset(const uint8_t* pkt, size_t len) {
  if (len < 20) return 0;
  int version = pkt[0] >> 4;
  size_t off;
  if (version == 4) {
    off = (pkt[0] & 0x0f) * 4u;
    // A later fragment (offset != 0) carries no TCP header.
    if (off < 20 || pkt[9] != kProtoTcp || (LoadBe16(pkt + 6) & 0x1fff) != 0) return 0;
  } else if (version == 6) {
    off = 40;
    if (pkt[6] != kProtoTcp) return 0;
  } else {
    return 0;
  }
  if (len < off + 20) return 0;
  size_t doff = (pkt[off + 12] >> 4) * 4u;
  if (doff < 20 || len < off + doff) return 0;
  return off;
}

// Offset (from the TCP header) of the value of the first option `kind` whose length is `olen`,
// 0 when there is none.
inline size_t FindTcpOption(const uint8_t* tcp, uint8_t kind, uint8_t olen) {
  size_t doff = (tcp[12] >> 4) * 4u;
  for (size_t i = 20; i < doff;) {
    uint8_t k = tcp[i];
    if (k == 0) break;  // end of options
    if (k == 1) {       // no-operation
      i++;
      continue;
    }
    if (i + 1 >= doff) break;
    size_t len = tcp[i + 1];
    if (len < 2 || i + len > doff) break;  // malformed: leave the segment as it is
    if (k == kind && len == olen) return i + 2;
    i += len;
  }
  return 0;
}

// One 16-bit word of a checksummed region changed from `old_word` to `new_word`.
inline uint16_t PatchChecksum(uint16_t hc, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~hc) + static_cast<uint32_t>(static_cast<uint16_t>(~old_word)) + new_word;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Writes `n` bytes (1 or 2) at offset `at` of the TCP header and patches its checksum.
inline void RewriteTcpBytes(uint8_t* tcp, size_t at, const uint8_t* value, size_t n) {
  size_t first = at & ~static_cast<size_t>(1);
  size_t words = (at + n + 1 - first) / 2;  // 16-bit words the bytes fall into: 1 or 2
  uint16_t before[2] = {LoadBe16(tcp + first), words > 1 ? LoadBe16(tcp + first + 2) : uint16_t{0}};
  for (size_t k = 0; k < n; k++) tcp[at + k] = value[k];
  uint16_t hc = LoadBe16(tcp + 16);
  for (size_t w = 0; w < words; w++) hc = PatchChecksum(hc, before[w], LoadBe16(tcp + first + 2 * w));
  StoreBe16(tcp + 16, hc);
}

}  // namespace tswg
