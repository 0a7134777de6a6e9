// The UDP sockets of the native path: one IPv4 and one IPv6-only socket on the same port,
// with large buffers, SO_MARK, and batched I/O where the kernel offers it: sendmmsg/recvmmsg,
// UDP GSO (UDP_SEGMENT: one send for a train of equal-sized datagrams) and UDP GRO (one
// receive for a train that arrived together). Features the kernel refuses are turned off
// and the plain system calls used instead.
#pragma once

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace tswg {

struct SockAddr {
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } u;
  socklen_t len = 0;
  int family() const { return len == 0 ? 0 : u.sa.sa_family; }
  void Clear() {
    memset(&u, 0, sizeof(u));
    len = 0;
  }
};

bool SameSockAddr(const SockAddr& a, const SockAddr& b);
// From (family 4|6, address bytes, port, zone) as the JavaScript side describes endpoints.
// An IPv6 zone is an interface name or number; returns false for anything unusable.
bool MakeSockAddr(int family, const uint8_t* addr, size_t addr_len, uint16_t port, const std::string& zone,
                  SockAddr* out);
// Packs an address as 24 bytes for JavaScript: family, 0, port (big-endian), scope id
// (little-endian 32 bits), 16 address bytes (IPv4 in the first 4).
void PackSockAddr(const SockAddr& a, uint8_t out[24]);

struct UdpOpenOptions {
  uint16_t port = 0;
  bool ipv4 = true;
  bool ipv6 = true;
  std::string address4;  // empty: any
  std::string address6;
  int buffer_bytes = 7 << 20;
};

struct UdpCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> send_errors{0};
  std::atomic<uint64_t> gso_sends{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> gro_receives{0};
  std::atomic<int> last_errno{0};
  std::atomic<uint64_t> pmtu_splits{0};  // GSO trains sent as single datagrams after a size error
};

class UdpSockets {
 public:
  // Returns 0 and the sockets, or an errno value and the failed step in `syscall`.
  static int Open(const UdpOpenOptions& opts, std::shared_ptr<UdpSockets>* out, std::string* syscall);
  ~UdpSockets();
  UdpSockets(const UdpSockets&) = delete;
  UdpSockets& operator=(const UdpSockets&) = delete;

  int fd4() const { return fd4_; }
  int fd6() const { return fd6_; }
  uint16_t port() const { return port_; }
  bool gso() const { return gso_.load(std::memory_order_relaxed); }
  bool gro() const { return gro_; }
  int buffer_bytes() const { return buffer_bytes_; }
  UdpCounters& counters() { return counters_; }
  // Path MTU per destination (pmtu.h); SendTrain keeps GSO segments within it.
  class PathMtuTable& pmtu() { return *pmtu_; }

  // SO_MARK on every socket; 0 or an errno value.
  int SetMark(uint32_t mark);

  // Sends `count` datagrams laid out back to back in `buf`, each `seg` bytes except the last,
  // which may be shorter. Uses one GSO send where possible. Returns datagrams that failed.
  size_t SendTrain(const SockAddr& to, const uint8_t* buf, size_t total, size_t seg);
  // Sends separate datagrams (sendmmsg). Returns how many failed.
  size_t SendEach(const SockAddr& to, const uint8_t* const* bufs, const size_t* lens, size_t count);

 private:
  UdpSockets() = default;
  int FdFor(const SockAddr& to) const;
  // Whether a `seg`-byte datagram to `to` fits the path MTU (pmtu.h); unknown counts as fits.
  bool SegmentFitsPath(const SockAddr& to, size_t seg, bool refresh = false);

  int fd4_ = -1;
  int fd6_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> gso_{false};
  bool gro_ = false;
  int buffer_bytes_ = 0;
  UdpCounters counters_;
  std::unique_ptr<class PathMtuTable> pmtu_;
};

// Largest train one GSO send may carry (the kernel's own limit is 64 segments on older
// kernels and a 64 KiB datagram).
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxGsoBytes = 65000;

}  // namespace tswg
