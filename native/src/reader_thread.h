// The skeleton both reader threads share (the TUN reader and the UDP receiver): a thread that
// waits in poll() on its descriptors and on an eventfd for wake-ups; credits that bound what it
// hands to JavaScript (each batch spends one, Acknowledge() returns it); and an optional
// handler — the native data path — that sees every batch first, on this thread, and passes on
// only what it does not deal with itself.
//
// A derived class prepares its buffers, calls StartThread(), implements Run(), and calls Stop()
// in its destructor (before its own members go).
#pragma once

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

namespace tswg {

template <typename Handler>
class ReaderThread {
 public:
  explicit ReaderThread(int max_pending) : max_pending_(max_pending), credits_(max_pending) {}
  virtual ~ReaderThread() = default;
  ReaderThread(const ReaderThread&) = delete;
  ReaderThread& operator=(const ReaderThread&) = delete;

  // Returns one credit. Any thread. Only the step from zero to one needs the thread's
  // attention: with credits left it is already polling.
  void Acknowledge() {
    if (credits_.fetch_add(1, std::memory_order_acq_rel) == 0 && wake_fd_ >= 0) Wake();
  }

  // Wakes and joins the thread. Idempotent.
  void Stop() {
    if (wake_fd_ < 0) return;
    stopping_.store(true, std::memory_order_release);
    Wake();
    if (thread_.joinable()) thread_.join();
    close(wake_fd_);
    wake_fd_ = -1;
  }

  // Installs (or with null removes) the handler. Any thread; takes effect with the next batch.
  void SetHandler(std::shared_ptr<Handler> handler) {
    {
      std::lock_guard<std::mutex> lock(handler_mu_);
      handler_ = std::move(handler);
      has_handler_.store(handler_ != nullptr, std::memory_order_release);
    }
    // A thread paused for lack of credits must start polling again.
    if (wake_fd_ >= 0) Wake();
  }

  int pending() const { return max_pending_ - credits_.load(std::memory_order_relaxed); }

 protected:
  // Creates the wake-up eventfd and starts Run() on the thread; returns 0 or an errno value.
  int StartThread() {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) return errno;
    thread_ = std::thread([this]() { Run(); });
    return 0;
  }

  virtual void Run() = 0;

  void Wake() {
    uint64_t one = 1;
    // A full counter (EAGAIN) still leaves the eventfd readable, which is all a wake-up needs.
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }

  // Clears a wake-up once poll() reported the eventfd readable.
  void DrainWake() {
    uint64_t drained;
    ssize_t ignored = read(wake_fd_, &drained, sizeof(drained));
    (void)ignored;
  }

  int wake_fd() const { return wake_fd_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool HasCredit() const { return credits_.load(std::memory_order_acquire) > 0; }
  void SpendCredit() { credits_.fetch_sub(1, std::memory_order_acq_rel); }
  bool HasHandler() const { return has_handler_.load(std::memory_order_acquire); }

  std::shared_ptr<Handler> handler() {
    if (!HasHandler()) return nullptr;
    std::lock_guard<std::mutex> lock(handler_mu_);
    return handler_;
  }

  const int max_pending_;

 private:
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> credits_;
  std::mutex handler_mu_;
  std::shared_ptr<Handler> handler_;
  std::atomic<bool> has_handler_{false};
};

}  // namespace tswg
