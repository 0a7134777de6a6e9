#include "tun_reader.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <memory>

namespace tswg {

namespace {

// Room left before each read: a TUN's MTU can be as large as 65535, and a read into a
// shorter buffer would cut the packet.
constexpr size_t kMaxPacket = 65536;
// First allocation of a batch: enough for a full batch of typical 1500-byte packets.
constexpr size_t kTypicalPacket = 2048;
constexpr size_t kMaxInitialReserve = 1 << 20;

}  // namespace

TunReader::TunReader(int tun_fd, size_t batch_size, int max_pending, Sink sink)
    : tun_fd_(tun_fd),
      batch_size_(batch_size),
      max_pending_(max_pending),
      sink_(std::move(sink)),
      credits_(max_pending) {}

TunReader::~TunReader() { Stop(); }

int TunReader::Start() {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return errno;
  thread_ = std::thread([this]() { Run(); });
  return 0;
}

void TunReader::Wake() {
  uint64_t one = 1;
  // A full counter (EAGAIN) still leaves the eventfd readable, which is all a wake-up needs.
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

void TunReader::Acknowledge() {
  // Only the step from zero to one needs the thread's attention: with credits left it is
  // already polling the TUN.
  if (credits_.fetch_add(1, std::memory_order_acq_rel) == 0 && wake_fd_ >= 0) Wake();
}

void TunReader::Stop() {
  if (wake_fd_ < 0) return;
  stopping_.store(true, std::memory_order_release);
  Wake();
  if (thread_.joinable()) thread_.join();
  close(wake_fd_);
  wake_fd_ = -1;
}

TunReaderStats TunReader::stats() const {
  TunReaderStats s;
  s.packets = packets_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.pauses = pauses_.load(std::memory_order_relaxed);
  return s;
}

void TunReader::Fail(int err) {
  auto notice = new PacketBatch();
  notice->error = err;
  if (!sink_(notice)) delete notice;
}

void TunReader::Run() {
  bool paused = false;
  size_t initial = batch_size_ * kTypicalPacket;
  if (initial > kMaxInitialReserve) initial = kMaxInitialReserve;
  initial += kMaxPacket;

  while (!stopping_.load(std::memory_order_acquire)) {
    bool can_post = credits_.load(std::memory_order_acquire) > 0;
    if (!can_post && !paused) pauses_.fetch_add(1, std::memory_order_relaxed);
    paused = !can_post;

    struct pollfd fds[2];
    fds[0].fd = wake_fd_;
    fds[0].events = POLLIN;
    fds[0].revents = 0;
    fds[1].fd = tun_fd_;
    // Without credits, leave the TUN out; errors (POLLERR, POLLHUP) are reported anyway
    // but will be seen once reading resumes.
    fds[1].events = can_post ? POLLIN : 0;
    fds[1].revents = 0;
    nfds_t count = can_post ? 2 : 1;
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      Fail(errno);
      return;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t drained;
      ssize_t ignored = read(wake_fd_, &drained, sizeof(drained));
      (void)ignored;
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    if (!can_post || fds[1].revents == 0) continue;

    std::unique_ptr<PacketBatch> batch(new PacketBatch());
    int err = 0;
    if (!batch->Reserve(initial)) err = ENOMEM;
    while (err == 0 && batch->count() < batch_size_) {
      if (!batch->Reserve(kMaxPacket)) {
        // Hand over what was read; the next round starts afresh.
        if (batch->count() == 0) err = ENOMEM;
        break;
      }
      ssize_t n = read(tun_fd_, batch->Tail(), batch->Room());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) err = errno;
        break;
      }
      if (n == 0) break;
      batch->Commit(static_cast<size_t>(n));
      bytes_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    }
    if (batch->count() > 0) {
      packets_.fetch_add(batch->count(), std::memory_order_relaxed);
      batches_.fetch_add(1, std::memory_order_relaxed);
      credits_.fetch_sub(1, std::memory_order_acq_rel);
      if (!sink_(batch.get())) return;
      batch.release();
    } else if (err == 0 && (fds[1].revents & (POLLERR | POLLHUP | POLLNVAL))) {
      // Nothing to read yet the descriptor reports an error: the interface is gone.
      err = EBADFD;
    }
    if (err != 0) {
      // A TUN whose interface was deleted fails every read with EBADFD; anything but
      // EAGAIN here means no more packets will come.
      Fail(err);
      return;
    }
  }
}

}  // namespace tswg
