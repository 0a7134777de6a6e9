// Sliding-window replay protection for transport counters (the bitmap scheme of RFC 6479):
// a ring of 64-bit words; moving the window forward clears only the words it slides over.
#pragma once

#include <stdint.h>
#include <string.h>

namespace tswg {

class ReplayWindow {
 public:
  static constexpr uint64_t kWords = 128;  // a power of two
  static constexpr uint64_t kWordBits = 64;
  // One word stays spare so the oldest counters in the window never share a word with new ones.
  static constexpr uint64_t kWindow = (kWords - 1) * kWordBits;

  ReplayWindow() { Reset(); }

  void Reset() {
    memset(ring_, 0, sizeof(ring_));
    last_ = 0;
  }

  // Accepts `counter` and records it, unless it was seen, fell out of the window, or is at or
  // beyond `limit`. Call only after the packet authenticated.
  bool Check(uint64_t counter, uint64_t limit) {
    if (counter >= limit) return false;
    uint64_t word = counter / kWordBits;
    if (counter > last_) {
      uint64_t last_word = last_ / kWordBits;
      uint64_t advance = word - last_word;
      if (advance > kWords) advance = kWords;
      for (uint64_t i = 1; i <= advance; i++) ring_[(last_word + i) & (kWords - 1)] = 0;
      last_ = counter;
    } else if (last_ - counter > kWindow) {
      return false;
    }
    uint64_t& slot = ring_[word & (kWords - 1)];
    uint64_t bit = uint64_t{1} << (counter & (kWordBits - 1));
    if (slot & bit) return false;
    slot |= bit;
    return true;
  }

 private:
  uint64_t ring_[kWords];
  uint64_t last_;
};

}  // namespace tswg
