// Cryptokey routing for the native data path: longest-prefix match from an IP address to a
// peer id, as a binary trie per address family. Rebuilt whole from JavaScript's table when
// it changes (rare); looked up for every packet (often).
#pragma once

#include <stdint.h>

#include <vector>

namespace tswg {

class RouteTable {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  RouteTable() { Clear(); }
  void Clear() {
    v4_.assign(1, Node{});
    v6_.assign(1, Node{});
  }
  // `addr` holds 4 (IPv4) or 16 (IPv6) bytes; bits beyond `bits` are ignored.
  void Insert(int family, const uint8_t* addr, int bits, uint32_t value) {
    std::vector<Node>& t = family == 4 ? v4_ : v6_;
    int max = family == 4 ? 32 : 128;
    if (bits < 0 || bits > max) return;
    uint32_t n = 0;
    for (int i = 0; i < bits; i++) {
      int b = (addr[i >> 3] >> (7 - (i & 7))) & 1;
      if (t[n].child[b] == 0) {
        t[n].child[b] = static_cast<uint32_t>(t.size());
        t.push_back(Node{});
      }
      n = t[n].child[b];
    }
    t[n].value = value;
  }
  uint32_t Lookup4(const uint8_t* addr) const { return Lookup(v4_, addr, 32); }
  uint32_t Lookup6(const uint8_t* addr) const { return Lookup(v6_, addr, 128); }

 private:
  struct Node {
    uint32_t child[2] = {0, 0};  // 0: none (the root is never anyone's child)
    uint32_t value = kNone;
  };
  static uint32_t Lookup(const std::vector<Node>& t, const uint8_t* addr, int bits) {
    uint32_t n = 0;
    uint32_t best = t[0].value;
    for (int i = 0; i < bits; i++) {
      int b = (addr[i >> 3] >> (7 - (i & 7))) & 1;
      n = t[n].child[b];
      if (n == 0) break;
      if (t[n].value != kNone) best = t[n].value;
    }
    return best;
  }
  std::vector<Node> v4_;
  std::vector<Node> v6_;
};

}  // namespace tswg
