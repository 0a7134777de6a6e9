#include "udp_socket.h"

#include "pmtu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace tswg {

bool SameSockAddr(const SockAddr& a, const SockAddr& b) {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    return a.u.v4.sin_port == b.u.v4.sin_port && a.u.v4.sin_addr.s_addr == b.u.v4.sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    return a.u.v6.sin6_port == b.u.v6.sin6_port && a.u.v6.sin6_scope_id == b.u.v6.sin6_scope_id &&
           memcmp(&a.u.v6.sin6_addr, &b.u.v6.sin6_addr, 16) == 0;
  }
  return a.len == 0 && b.len == 0;
}

bool MakeSockAddr(int family, const uint8_t* addr, size_t addr_len, uint16_t port, const std::string& zone,
                  SockAddr* out) {
  out->Clear();
  if (family == 4 && addr_len == 4) {
    out->u.v4.sin_family = AF_INET;
    out->u.v4.sin_port = htons(port);
    memcpy(&out->u.v4.sin_addr, addr, 4);
    out->len = sizeof(sockaddr_in);
    return true;
  }
  if (family == 6 && addr_len == 16) {
    out->u.v6.sin6_family = AF_INET6;
    out->u.v6.sin6_port = htons(port);
    memcpy(&out->u.v6.sin6_addr, addr, 16);
    if (!zone.empty()) {
      char* end = nullptr;
      unsigned long n = strtoul(zone.c_str(), &end, 10);
      unsigned index = (end != nullptr && *end == '\0') ? static_cast<unsigned>(n) : if_nametoindex(zone.c_str());
      if (index == 0) return false;
      out->u.v6.sin6_scope_id = index;
    }
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

void PackSockAddr(const SockAddr& a, uint8_t out[24]) {
  memset(out, 0, 24);
  if (a.family() == AF_INET) {
    out[0] = 4;
    memcpy(out + 2, &a.u.v4.sin_port, 2);
    memcpy(out + 8, &a.u.v4.sin_addr, 4);
  } else if (a.family() == AF_INET6) {
    out[0] = 6;
    memcpy(out + 2, &a.u.v6.sin6_port, 2);
    uint32_t scope = a.u.v6.sin6_scope_id;
    for (int i = 0; i < 4; i++) out[4 + i] = static_cast<uint8_t>(scope >> (8 * i));
    memcpy(out + 8, &a.u.v6.sin6_addr, 16);
  }
}

namespace {

void SetBuffers(int fd, int bytes) {
  // As root the *FORCE variants exceed net.core.{r,w}mem_max; otherwise the kernel caps.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
  }
}

int BindSocket(int family, uint16_t port, const std::string& address, int* out_fd, uint16_t* out_port,
               std::string* syscall) {
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *syscall = family == 4 ? "socket(IPv4)" : "socket(IPv6)";
    return errno;
  }
  SockAddr sa;
  sa.Clear();
  if (family == 4) {
    sa.u.v4.sin_family = AF_INET;
    sa.u.v4.sin_port = htons(port);
    sa.len = sizeof(sockaddr_in);
    if (!address.empty() && inet_pton(AF_INET, address.c_str(), &sa.u.v4.sin_addr) != 1) {
      close(fd);
      *syscall = "inet_pton(" + address + ")";
      return EINVAL;
    }
  } else {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    sa.u.v6.sin6_family = AF_INET6;
    sa.u.v6.sin6_port = htons(port);
    sa.len = sizeof(sockaddr_in6);
    if (!address.empty() && inet_pton(AF_INET6, address.c_str(), &sa.u.v6.sin6_addr) != 1) {
      close(fd);
      *syscall = "inet_pton(" + address + ")";
      return EINVAL;
    }
  }
  if (bind(fd, &sa.u.sa, sa.len) < 0) {
    int err = errno;
    close(fd);
    *syscall = family == 4 ? "bind(IPv4)" : "bind(IPv6)";
    return err;
  }
  SockAddr bound;
  bound.len = sizeof(bound.u);
  if (getsockname(fd, &bound.u.sa, &bound.len) < 0) {
    int err = errno;
    close(fd);
    *syscall = "getsockname";
    return err;
  }
  *out_port = ntohs(family == 4 ? bound.u.v4.sin_port : bound.u.v6.sin6_port);
  *out_fd = fd;
  return 0;
}

bool FamilyUnavailable(int err) { return err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT; }

}  // namespace

int UdpSockets::Open(const UdpOpenOptions& opts, std::shared_ptr<UdpSockets>* out, std::string* syscall) {
  std::shared_ptr<UdpSockets> s(new UdpSockets());
  // With port 0 the IPv6 socket takes the IPv4 one's port; if that is taken for IPv6,
  // try again with another.
  for (int attempt = 0; attempt < 100; attempt++) {
    uint16_t port = opts.port;
    if (opts.ipv4) {
      int err = BindSocket(4, opts.port, opts.address4, &s->fd4_, &port, syscall);
      if (err != 0) {
        if (!FamilyUnavailable(err) || !opts.ipv6) return err;
        s->fd4_ = -1;
      }
    }
    if (opts.ipv6) {
      uint16_t port6 = port;
      int err = BindSocket(6, s->fd4_ >= 0 ? port : opts.port, opts.address6, &s->fd6_, &port6, syscall);
      if (err != 0) {
        if (s->fd4_ >= 0 && FamilyUnavailable(err)) {
          s->fd6_ = -1;
        } else {
          if (s->fd4_ >= 0) close(s->fd4_);
          s->fd4_ = -1;
          if (err == EADDRINUSE && opts.port == 0 && opts.ipv4) continue;
          return err;
        }
      } else {
        port = port6;
      }
    }
    s->port_ = port;
    break;
  }
  if (s->fd4_ < 0 && s->fd6_ < 0) {
    *syscall = "bind";
    return EADDRINUSE;
  }
  s->buffer_bytes_ = opts.buffer_bytes;
  bool gso = true;
  bool gro = true;
  for (int fd : {s->fd4_, s->fd6_}) {
    if (fd < 0) continue;
    SetBuffers(fd, opts.buffer_bytes);
    ApplyPmtuPolicy(fd, fd == s->fd4_ ? AF_INET : AF_INET6);  // path MTU: pmtu.h
    int one = 1;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) < 0) gro = false;
    // UDP_SEGMENT is readable where the kernel supports GSO for UDP.
    int seg = 0;
    socklen_t seg_len = sizeof(seg);
    if (getsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, &seg_len) < 0) gso = false;
  }
  s->gso_.store(gso, std::memory_order_relaxed);
  s->gro_ = gro;
  s->pmtu_.reset(new PathMtuTable());
  *out = std::move(s);
  return 0;
}

UdpSockets::~UdpSockets() {
  if (fd4_ >= 0) close(fd4_);
  if (fd6_ >= 0) close(fd6_);
}

int UdpSockets::SetMark(uint32_t mark) {
  for (int fd : {fd4_, fd6_}) {
    if (fd < 0) continue;
    if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) return errno;
  }
  pmtu_->SetMark(mark);
  return 0;
}

int UdpSockets::FdFor(const SockAddr& to) const {
  if (to.family() == AF_INET) return fd4_;
  if (to.family() == AF_INET6) return fd6_;
  return -1;
}

bool UdpSockets::SegmentFitsPath(const SockAddr& to, size_t seg, bool refresh) {
  uint32_t mtu = refresh ? pmtu_->Refresh(to) : pmtu_->Get(to);
  return mtu == 0 || seg + OuterHeaderBytes(to) <= mtu;
}

size_t UdpSockets::SendTrain(const SockAddr& to, const uint8_t* buf, size_t total, size_t seg) {
  if (total == 0 || seg == 0) return 0;
  size_t count = (total + seg - 1) / seg;
  int fd = FdFor(to);
  if (fd < 0) {
    counters_.send_errors.fetch_add(count, std::memory_order_relaxed);
    counters_.last_errno.store(EAFNOSUPPORT, std::memory_order_relaxed);
    return count;
  }
  // Path MTU (pmtu.h): a GSO segment above the learnt path MTU fails the whole send, so such
  // trains go as single datagrams, which the kernel fragments at the source if it must.
  bool seg_fits = count > 1 && gso_.load(std::memory_order_relaxed) && SegmentFitsPath(to, seg);
  if (seg_fits) {
    struct iovec iov;
    iov.iov_base = const_cast<uint8_t*>(buf);
    iov.iov_len = total;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))];
    memset(control, 0, sizeof(control));
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_name = const_cast<sockaddr*>(&to.u.sa);
    msg.msg_namelen = to.len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso_size = static_cast<uint16_t>(seg);
    memcpy(CMSG_DATA(c), &gso_size, sizeof(gso_size));
    ssize_t n;
    do {
      n = sendmsg(fd, &msg, 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      counters_.sent.fetch_add(count, std::memory_order_relaxed);
      counters_.gso_sends.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    int err = errno;
    // EMSGSIZE (IPv6) / EINVAL (IPv4): the segment exceeds a path MTU the kernel learnt since.
    bool too_big = (err == EMSGSIZE || err == EINVAL) && !SegmentFitsPath(to, seg, /*refresh=*/true);
    // EIO: the route's device cannot do it after all; EINVAL/ENOPROTOOPT: no GSO here.
    // Turn GSO off for good and send the train the plain way.
    if (too_big) {
      counters_.pmtu_splits.fetch_add(1, std::memory_order_relaxed);
    } else if (err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP) {
      gso_.store(false, std::memory_order_relaxed);
    } else {
      counters_.send_errors.fetch_add(count, std::memory_order_relaxed);
      counters_.last_errno.store(err, std::memory_order_relaxed);
      return count;
    }
  }
  const uint8_t* bufs[kMaxGsoSegments];
  size_t lens[kMaxGsoSegments];
  size_t failed = 0;
  size_t off = 0;
  while (off < total) {
    size_t n = 0;
    while (n < kMaxGsoSegments && off < total) {
      size_t len = total - off < seg ? total - off : seg;
      bufs[n] = buf + off;
      lens[n] = len;
      off += len;
      n++;
    }
    failed += SendEach(to, bufs, lens, n);
  }
  return failed;
}

size_t UdpSockets::SendEach(const SockAddr& to, const uint8_t* const* bufs, const size_t* lens, size_t count) {
  int fd = FdFor(to);
  if (fd < 0) {
    counters_.send_errors.fetch_add(count, std::memory_order_relaxed);
    counters_.last_errno.store(EAFNOSUPPORT, std::memory_order_relaxed);
    return count;
  }
  constexpr size_t kChunk = 64;
  struct mmsghdr msgs[kChunk];
  struct iovec iovs[kChunk];
  size_t failed = 0;
  size_t i = 0;
  while (i < count) {
    size_t n = count - i < kChunk ? count - i : kChunk;
    for (size_t k = 0; k < n; k++) {
      iovs[k].iov_base = const_cast<uint8_t*>(bufs[i + k]);
      iovs[k].iov_len = lens[i + k];
      memset(&msgs[k], 0, sizeof(msgs[k]));
      msgs[k].msg_hdr.msg_name = const_cast<sockaddr*>(&to.u.sa);
      msgs[k].msg_hdr.msg_namelen = to.len;
      msgs[k].msg_hdr.msg_iov = &iovs[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    size_t done = 0;
    while (done < n) {
      int r = sendmmsg(fd, msgs + done, static_cast<unsigned>(n - done), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        // The first message failed: count it and carry on with the next (EAGAIN means the
        // socket buffer is full; dropping is what UDP would do).
        counters_.last_errno.store(errno, std::memory_order_relaxed);
        counters_.send_errors.fetch_add(1, std::memory_order_relaxed);
        failed++;
        done++;
        continue;
      }
      counters_.sent.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
      done += static_cast<size_t>(r);
    }
    i += n;
  }
  return failed;
}

}  // namespace tswg
