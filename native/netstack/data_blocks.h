// Received TCP bytes on their way to JavaScript: fixed-size blocks that are reused.
//
// The stack copies each received segment once, onto the block of the connection's last data
// event. A large run is handed to JavaScript as a Buffer over the block itself, which comes back
// here when the Buffer is collected; a small one is copied into a Buffer of its own and its
// block comes back at once. Reusing blocks keeps that one copy the only cost: a growing vector
// per event was zero-filled, copied again on every growth and, past malloc's mmap threshold,
// freshly mapped (page faults) and unmapped each time — over a third of the stack thread's time
// in a single download.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace tswg_netstack {

class BlockPool {
 public:
  // Bytes per block: the most one data event carries.
  static constexpr size_t kBlockSize = 256u << 10;
  // Free blocks kept for reuse (4 MiB); more are given back to the allocator.
  static constexpr size_t kMaxFree = 16;

  BlockPool() = default;
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool() {
    for (uint8_t* b : free_) std::free(b);
  }

  // A block, or nullptr when memory is exhausted.
  uint8_t* Take() {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!free_.empty()) {
        uint8_t* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return static_cast<uint8_t*>(std::malloc(kBlockSize));
  }

  void Give(uint8_t* block) {
    if (block == nullptr) return;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (free_.size() < kMaxFree) {
        free_.push_back(block);
        return;
      }
    }
    std::free(block);
  }

 private:
  std::mutex mu_;
  std::vector<uint8_t*> free_;
};

// A block with the bytes written into it so far; gives the block back when dropped. The pool is
// shared: a Buffer over a block may be collected after the stack is gone.
class DataBlock {
 public:
  DataBlock() = default;
  explicit DataBlock(std::shared_ptr<BlockPool> pool) : pool_(std::move(pool)), bytes_(pool_->Take()) {}
  DataBlock(DataBlock&& o) noexcept : pool_(std::move(o.pool_)), bytes_(o.bytes_), size_(o.size_) {
    o.bytes_ = nullptr;
    o.size_ = 0;
  }
  DataBlock& operator=(DataBlock&& o) noexcept {
    if (this != &o) {
      Reset();
      pool_ = std::move(o.pool_);
      bytes_ = o.bytes_;
      size_ = o.size_;
      o.bytes_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  DataBlock(const DataBlock&) = delete;
  DataBlock& operator=(const DataBlock&) = delete;
  ~DataBlock() { Reset(); }

  bool valid() const { return bytes_ != nullptr; }
  size_t size() const { return size_; }
  size_t room() const { return bytes_ == nullptr ? 0 : BlockPool::kBlockSize - size_; }
  const uint8_t* data() const { return bytes_; }
  // Where the next `n` (≤ room()) bytes go; they count as written.
  uint8_t* Append(size_t n) {
    uint8_t* at = bytes_ + size_;
    size_ += n;
    return at;
  }

  // Hands the block over (to a Buffer's finalizer), which gives it back to pool().
  uint8_t* Release() {
    uint8_t* b = bytes_;
    bytes_ = nullptr;
    size_ = 0;
    return b;
  }
  const std::shared_ptr<BlockPool>& pool() const { return pool_; }

 private:
  void Reset() {
    if (bytes_ != nullptr && pool_) pool_->Give(bytes_);
    bytes_ = nullptr;
    size_ = 0;
  }

  std::shared_ptr<BlockPool> pool_;
  uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tswg_netstack
