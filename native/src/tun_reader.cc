#include "tun_reader.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vnet.h"

namespace tswg {

namespace {

// Room left before each read: a TUN's MTU can be as large as 65535, and a read into a
// shorter buffer would cut the packet.
constexpr size_t kMaxPacket = 65536;
// First allocation of a batch: enough for a full batch of typical 1500-byte packets.
constexpr size_t kTypicalPacket = 2048;
constexpr size_t kMaxInitialReserve = 1 << 20;

}  // namespace

TunReader::TunReader(int tun_fd, bool vnet, size_t batch_size, int max_pending, Sink sink)
    : ReaderThread(max_pending), tun_fd_(tun_fd), vnet_(vnet), batch_size_(batch_size), sink_(std::move(sink)) {}

TunReader::~TunReader() { Stop(); }

int TunReader::Start() {
  if (vnet_) read_buf_.resize(kVnetHdrLen + kMaxPacket);
  int type = 0;
  socklen_t len = sizeof(type);
  packet_socket_ = !vnet_ && getsockopt(tun_fd_, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  return StartThread();
}

TunReaderStats TunReader::stats() const {
  TunReaderStats s;
  s.packets = packets_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.pauses = pauses_.load(std::memory_order_relaxed);
  s.super_packets = super_packets_.load(std::memory_order_relaxed);
  s.malformed = malformed_.load(std::memory_order_relaxed);
  s.handled = handled_.load(std::memory_order_relaxed);
  s.passed_dropped = passed_dropped_.load(std::memory_order_relaxed);
  return s;
}

void TunReader::Fail(int err) {
  auto notice = new PacketBatch();
  notice->error = err;
  if (!sink_(notice)) delete notice;
}

int TunReader::ReceiveBatched(PacketBatch* batch) {
  constexpr size_t kChunk = 16;
  struct mmsghdr msgs[kChunk];
  struct iovec iov[kChunk];
  while (batch->count() < batch_size_) {
    size_t want = batch_size_ - batch->count() < kChunk ? batch_size_ - batch->count() : kChunk;
    if (!batch->Reserve(want * kMaxPacket)) return batch->count() == 0 ? ENOMEM : 0;
    uint8_t* base = batch->Tail();
    for (size_t k = 0; k < want; k++) {
      iov[k].iov_base = base + k * kMaxPacket;
      iov[k].iov_len = kMaxPacket;
      memset(&msgs[k], 0, sizeof(msgs[k]));
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(tun_fd_, msgs, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : errno;
    }
    for (int k = 0; k < n; k++) {
      size_t len = msgs[k].msg_len;
      if (len == 0) return 0;  // the other end is closed; poll reports the hang-up
      if (msgs[k].msg_hdr.msg_flags & MSG_TRUNC) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      bytes_.fetch_add(len, std::memory_order_relaxed);
      // Slots are kMaxPacket apart; the batch keeps its packets back to back.
      memmove(batch->Tail(), base + static_cast<size_t>(k) * kMaxPacket, len);
      batch->Commit(len);
    }
    if (static_cast<size_t>(n) < want) return 0;
  }
  return 0;
}

int TunReader::ReadInto(PacketBatch* batch) {
  if (packet_socket_) return ReceiveBatched(batch);
  while (batch->count() < batch_size_) {
    ssize_t n;
    if (vnet_) {
      n = read(tun_fd_, read_buf_.data(), read_buf_.size());
    } else {
      if (!batch->Reserve(kMaxPacket)) return batch->count() == 0 ? ENOMEM : 0;
      n = read(tun_fd_, batch->Tail(), batch->Room());
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : errno;
    }
    if (n == 0) return 0;
    bytes_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    if (!vnet_) {
      batch->Commit(static_cast<size_t>(n));
      continue;
    }
    if (static_cast<size_t>(n) <= kVnetHdrLen) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    VirtioNetHdr hdr;
    memcpy(&hdr, read_buf_.data(), sizeof(hdr));
    if (hdr.gso_type != kGsoNone) super_packets_.fetch_add(1, std::memory_order_relaxed);
    SplitResult r = SplitVnetPacket(hdr, read_buf_.data() + kVnetHdrLen, static_cast<size_t>(n) - kVnetHdrLen, batch);
    if (r == SplitResult::kNoMemory) return batch->count() == 0 ? ENOMEM : 0;
    if (r == SplitResult::kMalformed) malformed_.fetch_add(1, std::memory_order_relaxed);
  }
  return 0;
}

void TunReader::Run() {
  bool paused = false;
  size_t initial = batch_size_ * kTypicalPacket;
  if (initial > kMaxInitialReserve) initial = kMaxInitialReserve;
  initial += kMaxPacket;
  PacketBatch work;  // reused while a handler is installed: no allocation per batch
  std::unique_ptr<PacketBatch> spare;

  while (!stopping()) {
    std::shared_ptr<TunPacketHandler> h = handler();
    bool has_credit = HasCredit();
    bool can_read = has_credit || h != nullptr;
    if (!can_read && !paused) pauses_.fetch_add(1, std::memory_order_relaxed);
    paused = !can_read;

    struct pollfd fds[2];
    fds[0].fd = wake_fd();
    fds[0].events = POLLIN;
    fds[0].revents = 0;
    fds[1].fd = tun_fd_;
    // Without credits, leave the TUN out; errors (POLLERR, POLLHUP) are reported anyway
    // but will be seen once reading resumes.
    fds[1].events = can_read ? POLLIN : 0;
    fds[1].revents = 0;
    nfds_t count = can_read ? 2 : 1;
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      Fail(errno);
      return;
    }
    if (fds[0].revents & POLLIN) DrainWake();
    if (stopping()) return;
    if (!can_read || fds[1].revents == 0) continue;
    // The handler may have changed while polling.
    h = handler();

    std::unique_ptr<PacketBatch> fresh;
    PacketBatch* batch;
    if (h != nullptr) {
      work.Clear();
      batch = &work;
    } else {
      if (!HasCredit()) continue;
      fresh.reset(new PacketBatch());
      batch = fresh.get();
    }
    int err = 0;
    if (!batch->Reserve(initial)) err = ENOMEM;
    if (err == 0) err = ReadInto(batch);

    if (batch->count() > 0) {
      packets_.fetch_add(batch->count(), std::memory_order_relaxed);
      batches_.fetch_add(1, std::memory_order_relaxed);
      std::unique_ptr<PacketBatch> onward;
      if (h != nullptr) {
        // Whatever the handler passes on goes to JavaScript if a credit is left. The batch
        // for it is kept for reuse while it stays empty, which is the usual case.
        bool credit = HasCredit();
        if (credit && !spare) spare.reset(new PacketBatch());
        size_t done = h->HandleTunPackets(*batch, credit ? spare.get() : nullptr);
        handled_.fetch_add(done, std::memory_order_relaxed);
        if (!credit) {
          passed_dropped_.fetch_add(batch->count() - done, std::memory_order_relaxed);
        } else if (spare->count() > 0) {
          onward = std::move(spare);
        }
      } else {
        onward = std::move(fresh);
      }
      if (onward) {
        SpendCredit();
        if (!sink_(onward.get())) return;
        onward.release();
      }
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
