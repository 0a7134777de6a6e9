// A file descriptor shared between the objects that use it: closed when the last one lets go,
// so a thread still writing to it can never hit a number the kernel has handed out again.
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>

#include "packet_sink.h"

namespace tswg {

class SharedFd {
 public:
  explicit SharedFd(int fd) : fd_(fd) {}
  ~SharedFd() {
    if (fd_ >= 0) close(fd_);
    delete sink_.load(std::memory_order_acquire);
  }
  SharedFd(const SharedFd&) = delete;
  SharedFd& operator=(const SharedFd&) = delete;
  int get() const { return fd_; }

  // Where packets written to this descriptor go by a call instead (packet_sink.h): its other
  // end is the network stack's packet socket. Set at most once; false if already set.
  bool SetSink(const PacketSink* sink) {
    auto* ref = new PacketSinkRef(sink);
    PacketSinkRef* none = nullptr;
    if (sink_.compare_exchange_strong(none, ref, std::memory_order_acq_rel)) return true;
    delete ref;
    return false;
  }
  const PacketSinkRef* sink() const { return sink_.load(std::memory_order_acquire); }

 private:
  int fd_;
  std::atomic<PacketSinkRef*> sink_{nullptr};
};

using SharedFdPtr = std::shared_ptr<SharedFd>;

}  // namespace tswg
