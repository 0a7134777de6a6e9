// A batch of packets stored back to back: what one wake-up of a reader produced.
#pragma once

#include <stdint.h>
#include <stdlib.h>

#include <vector>

namespace tswg {

class PacketBatch {
 public:
  PacketBatch() = default;
  ~PacketBatch() { free(data_); }
  PacketBatch(const PacketBatch&) = delete;
  PacketBatch& operator=(const PacketBatch&) = delete;

  // Makes room for `bytes` more after the used part; false when memory is exhausted.
  // (A plain vector would zero-fill the room before every read.)
  bool Reserve(size_t bytes) {
    if (capacity_ - used_ >= bytes) return true;
    size_t wanted = capacity_ == 0 ? bytes : capacity_ * 2;
    if (wanted < used_ + bytes) wanted = used_ + bytes;
    void* grown = realloc(data_, wanted);
    if (grown == nullptr) return false;
    data_ = static_cast<uint8_t*>(grown);
    capacity_ = wanted;
    return true;
  }
  uint8_t* Tail() { return data_ + used_; }
  size_t Room() const { return capacity_ - used_; }
  void Commit(size_t packet_size) {
    used_ += packet_size;
    sizes_.push_back(static_cast<uint32_t>(packet_size));
  }

  // Forgets the packets but keeps the memory, for a batch that is reused.
  void Clear() {
    used_ = 0;
    sizes_.clear();
    error = 0;
  }

  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() { return data_; }
  size_t bytes() const { return used_; }
  const std::vector<uint32_t>& sizes() const { return sizes_; }
  size_t count() const { return sizes_.size(); }

  // Set on the last message of a reader that stopped on an error (the batch is then empty).
  int error = 0;

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
  std::vector<uint32_t> sizes_;
};

}  // namespace tswg
