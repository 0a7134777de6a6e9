#include "mss_clamp.h"

#include "tcp_options.h"

namespace tswg {

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
  size_t at = FindTcpOption(tcp, kTcpOptionMss, 4);
  if (at == 0 || LoadBe16(tcp + at) <= max_mss) return false;
  uint8_t value[2] = {static_cast<uint8_t>(max_mss >> 8), static_cast<uint8_t>(max_mss)};
  RewriteTcpBytes(tcp, at, value, 2);
  return true;
}

}  // namespace tswg
