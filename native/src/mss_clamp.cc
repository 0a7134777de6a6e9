#include "mss_clamp.h"

#include "checksum.h"

namespace tswg {

namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kOptionEnd = 0;
constexpr uint8_t kOptionNop = 1;
constexpr uint8_t kOptionMss = 2;

// Offset of the TCP header in `pkt`, 0 when it is not a whole, directly carried TCP header.
size_t TcpOffset(const uint8_t* pkt, size_t len) {
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

// RFC 1624 eqn. 3 for one 16-bit word: HC' = ~(~HC + ~m + m').
uint16_t PatchChecksum(uint16_t hc, uint16_t old_word, uint16_t new_word) {
  uint32_t sum = static_cast<uint16_t>(~hc) + static_cast<uint32_t>(static_cast<uint16_t>(~old_word)) + new_word;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

bool IsTcpSyn(const uint8_t* pkt, size_t len) {
  size_t off = TcpOffset(pkt, len);
  return off != 0 && (pkt[off + 13] & kTcpSyn) != 0;
}

uint32_t MssLimit(int32_t setting, int version, uint32_t inner_mtu, uint32_t fallback_mtu) {
  if (setting > 0) return static_cast<uint32_t>(setting);
  if (setting != kMssClampAuto) return 0;
  uint32_t mtu = inner_mtu != 0 ? inner_mtu : fallback_mtu;
  uint32_t headers = version == 4 ? 40 : 60;  // IP + TCP without options
  return mtu > headers ? mtu - headers : 0;
}

bool ClampMss(uint8_t* pkt, size_t len, uint32_t max_mss) {
  if (max_mss == 0 || max_mss > 0xffff) return false;
  size_t off = TcpOffset(pkt, len);
  if (off == 0 || (pkt[off + 13] & kTcpSyn) == 0) return false;
  uint8_t* tcp = pkt + off;
  size_t doff = (tcp[12] >> 4) * 4u;
  size_t i = 20;
  while (i < doff) {
    uint8_t kind = tcp[i];
    if (kind == kOptionEnd) break;
    if (kind == kOptionNop) {
      i++;
      continue;
    }
    if (i + 1 >= doff) break;
    size_t olen = tcp[i + 1];
    if (olen < 2 || i + olen > doff) break;  // malformed: leave the segment as it is
    if (kind == kOptionMss && olen == 4) {
      size_t at = i + 2;
      if (LoadBe16(tcp + at) <= max_mss) return false;
      // The words of the TCP header the two value bytes fall into (two when `at` is odd).
      size_t first = at & ~static_cast<size_t>(1);
      size_t last = (at + 2 + 1) & ~static_cast<size_t>(1);
      uint16_t before[2] = {LoadBe16(tcp + first), last - first > 2 ? LoadBe16(tcp + first + 2) : uint16_t{0}};
      StoreBe16(tcp + at, static_cast<uint16_t>(max_mss));
      uint16_t hc = LoadBe16(tcp + 16);
      hc = PatchChecksum(hc, before[0], LoadBe16(tcp + first));
      if (last - first > 2) hc = PatchChecksum(hc, before[1], LoadBe16(tcp + first + 2));
      StoreBe16(tcp + 16, hc);
      return true;
    }
    i += olen;
  }
  return false;
}

}  // namespace tswg
