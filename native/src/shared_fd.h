// A file descriptor shared between the objects that use it: closed when the last one lets go,
// so a thread still writing to it can never hit a number the kernel has handed out again.
#pragma once

#include <unistd.h>

#include <memory>

namespace tswg {

class SharedFd {
 public:
  explicit SharedFd(int fd) : fd_(fd) {}
  ~SharedFd() {
    if (fd_ >= 0) close(fd_);
  }
  SharedFd(const SharedFd&) = delete;
  SharedFd& operator=(const SharedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

using SharedFdPtr = std::shared_ptr<SharedFd>;

}  // namespace tswg
