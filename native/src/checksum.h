// The Internet checksum (RFC 1071), computed in memory byte order so that the folded result
// can be stored into a header with memcpy on any host.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace tswg {

// Adds `len` bytes at `p` to a running ones'-complement sum. Regions must start at an even
// offset from the start of what is being summed; only the last region may have odd length.
inline uint64_t ChecksumAdd(const uint8_t* p, size_t len, uint64_t sum) {
  // 32-bit words into a 64-bit accumulator: carries pile up in the high half and are folded
  // once at the end, which is exact for anything shorter than 16 GiB.
  while (len >= 16) {
    uint32_t w[4];
    memcpy(w, p, 16);
    sum += static_cast<uint64_t>(w[0]) + w[1] + w[2] + w[3];
    p += 16;
    len -= 16;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len == 1) {
    uint8_t last[2] = {p[0], 0};
    uint16_t w;
    memcpy(&w, last, 2);
    sum += w;
  }
  return sum;
}

// Folds a running sum to 16 bits (not complemented), in memory byte order.
inline uint16_t ChecksumFold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The TCP/UDP pseudo-header (addresses, protocol, transport length) as a running sum.
inline uint64_t PseudoHeaderSum(const uint8_t* src, const uint8_t* dst, size_t addr_len,
                                uint8_t protocol, uint32_t transport_len) {
  uint64_t sum = ChecksumAdd(src, addr_len, 0);
  sum = ChecksumAdd(dst, addr_len, sum);
  uint8_t tail[8] = {0,
                     0,
                     0,
                     protocol,
                     static_cast<uint8_t>(transport_len >> 24),
                     static_cast<uint8_t>(transport_len >> 16),
                     static_cast<uint8_t>(transport_len >> 8),
                     static_cast<uint8_t>(transport_len)};
  return ChecksumAdd(tail, 8, sum);
}

inline void StoreChecksum(uint8_t* field, uint16_t value) { memcpy(field, &value, 2); }

// Recomputes an IPv4 header's checksum in place.
inline void SetIpv4HeaderChecksum(uint8_t* ip, size_t ihl) {
  ip[10] = 0;
  ip[11] = 0;
  StoreChecksum(ip + 10, static_cast<uint16_t>(~ChecksumFold(ChecksumAdd(ip, ihl, 0))));
}

inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace tswg
