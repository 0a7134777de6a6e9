// The thread that reads packets from a TUN file descriptor in batches.
//
// It waits in poll() on the TUN and on an eventfd used for wake-ups, reads until the TUN is
// empty or the batch is full, and hands each batch to a sink (JavaScript). Back-pressure is by
// credits: every batch handed over spends one, the consumer returns it with Acknowledge(), and
// with none left the thread stops polling the TUN, so unread packets wait in (and, when it is
// full, are dropped by) the kernel's queue instead of piling up in this process.
//
// With a virtio-net header (IFF_VNET_HDR) the thread splits the kernel's GSO super-packets
// into plain IP packets before anything else sees them.
//
// A handler (the native data path) may be installed: it then sees every batch first, on this
// thread, and passes on only what it does not deal with itself. Reading then no longer waits
// for credits; what the handler passes on while none are left is dropped and counted.
#pragma once

#include <stdint.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "packet_batch.h"
#include "reader_thread.h"

namespace tswg {

struct TunReaderStats {
  uint64_t packets = 0;  // IP packets read (after splitting)
  uint64_t bytes = 0;
  uint64_t batches = 0;
  uint64_t pauses = 0;        // times the reader ran out of credits
  uint64_t super_packets = 0;  // GSO packets split into segments
  uint64_t malformed = 0;      // reads whose virtio-net header or packet made no sense
  uint64_t handled = 0;        // packets the handler dealt with
  uint64_t passed_dropped = 0;  // packets the handler passed on while no credit was left
};

class TunPacketHandler {
 public:
  virtual ~TunPacketHandler() = default;
  // Called on the reader thread with the packets of one wake-up. Appends the packets it does
  // not deal with to `rest` (null when nothing can be passed on: such packets are dropped).
  // Returns how many packets it dealt with.
  virtual size_t HandleTunPackets(PacketBatch& packets, PacketBatch* rest) = 0;
};

class TunReader : public ReaderThread<TunPacketHandler> {
 public:
  // Called on the reader thread. Returns true when it took ownership of the batch, false when
  // the consumer is gone (the reader then frees the batch and stops).
  using Sink = std::function<bool(PacketBatch*)>;

  TunReader(int tun_fd, bool vnet, size_t batch_size, int max_pending, Sink sink);
  // Stops the thread; the TUN descriptor is not closed here.
  ~TunReader() override;

  // Starts the thread; returns 0 or an errno value.
  int Start();

  TunReaderStats stats() const;

 private:
  void Run() override;
  void Fail(int err);
  // Reads what the TUN has, up to a batch; returns 0, or the errno that ended reading.
  int ReadInto(PacketBatch* batch);
  // The same from a plain packet socket (the network stack's socketpair), many per recvmmsg.
  int ReceiveBatched(PacketBatch* batch);

  const int tun_fd_;
  const bool vnet_;
  bool packet_socket_ = false;
  const size_t batch_size_;
  Sink sink_;
  std::vector<uint8_t> read_buf_;
  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> pauses_{0};
  std::atomic<uint64_t> super_packets_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> passed_dropped_{0};
};

}  // namespace tswg
