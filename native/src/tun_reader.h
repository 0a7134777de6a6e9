// The thread that reads packets from a TUN file descriptor in batches.
//
// It waits in poll() on the TUN and on an eventfd used for wake-ups, reads until the TUN is
// empty or the batch is full, and hands each batch to a sink. Back-pressure is by credits:
// every batch handed over spends one, the consumer returns it with Acknowledge(), and with
// none left the thread stops polling the TUN, so unread packets wait in (and, when it is
// full, are dropped by) the kernel's queue instead of piling up in this process.
#pragma once

#include <stdint.h>

#include <atomic>
#include <functional>
#include <thread>

#include "packet_batch.h"

namespace tswg {

struct TunReaderStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t batches = 0;
  uint64_t pauses = 0;  // times the reader ran out of credits
};

class TunReader {
 public:
  // Called on the reader thread. Returns true when it took ownership of the batch, false when
  // the consumer is gone (the reader then frees the batch and stops).
  using Sink = std::function<bool(PacketBatch*)>;

  TunReader(int tun_fd, size_t batch_size, int max_pending, Sink sink);
  ~TunReader();
  TunReader(const TunReader&) = delete;
  TunReader& operator=(const TunReader&) = delete;

  // Starts the thread; returns 0 or an errno value.
  int Start();
  // Returns one credit. Any thread.
  void Acknowledge();
  // Wakes and joins the thread. Idempotent. The TUN descriptor is not closed here.
  void Stop();

  TunReaderStats stats() const;
  int pending() const { return max_pending_ - credits_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void Wake();
  void Fail(int err);

  const int tun_fd_;
  const size_t batch_size_;
  const int max_pending_;
  Sink sink_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> credits_;
  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> pauses_{0};
};

}  // namespace tswg
