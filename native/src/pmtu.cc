#include "pmtu.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace tswg {

namespace {

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// MTU of the interface that holds `local` (an address of this host), 0 when none does.
uint32_t InterfaceMtuOf(const SockAddr& local) {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  char name[IFNAMSIZ] = {};
  for (struct ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != local.family()) continue;
    bool same = local.family() == AF_INET
                    ? memcmp(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, &local.u.v4.sin_addr, 4) == 0
                    : memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, &local.u.v6.sin6_addr, 16) == 0;
    if (same) {
      strncpy(name, i->ifa_name, IFNAMSIZ - 1);
      break;
    }
  }
  freeifaddrs(list);
  if (name[0] == 0) return 0;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct ifreq req;
  memset(&req, 0, sizeof(req));
  memcpy(req.ifr_name, name, IFNAMSIZ);
  uint32_t mtu = ioctl(fd, SIOCGIFMTU, &req) == 0 && req.ifr_mtu > 0 ? static_cast<uint32_t>(req.ifr_mtu) : 0;
  close(fd);
  return mtu;
}

}  // namespace

void ApplyPmtuPolicy(int fd, int family) {
  if (family == AF_INET) {
    int v = IP_PMTUDISC_WANT;
    setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &v, sizeof(v));
  } else {
    int v = IPV6_PMTUDISC_WANT;
    setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &v, sizeof(v));
  }
}

uint32_t PathMtuTable::ReadKernel(const SockAddr& to) const { return ReadKernelPathMtu(to, mark_); }

uint32_t ReadKernelPathMtu(const SockAddr& to, uint32_t mark, uint32_t* interface_mtu) {
  if (interface_mtu != nullptr) *interface_mtu = 0;
  int family = to.family();
  if (family != AF_INET && family != AF_INET6) return 0;
  int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  // The same mark as the data sockets, so policy routing picks the same route.
  if (mark != 0) setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  uint32_t mtu = 0;
  if (connect(fd, &to.u.sa, to.len) == 0) {
    int v = 0;
    socklen_t len = sizeof(v);
    int r = family == AF_INET ? getsockopt(fd, IPPROTO_IP, IP_MTU, &v, &len)
                              : getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &v, &len);
    if (r == 0 && v > 0) mtu = static_cast<uint32_t>(v);
    SockAddr local;
    local.len = sizeof(local.u);
    if (mtu != 0 && interface_mtu != nullptr && getsockname(fd, &local.u.sa, &local.len) == 0) {
      *interface_mtu = InterfaceMtuOf(local);
    }
  }
  close(fd);
  return mtu;
}

namespace {
// Family, port and address (and IPv6 scope) as bytes: equal exactly when SameSockAddr says so.
std::string AddrKey(const SockAddr& to) {
  if (to.family() == AF_INET) {
    const sockaddr_in& a = to.u.v4;
    std::string k(1, '4');
    k.append(reinterpret_cast<const char*>(&a.sin_port), sizeof(a.sin_port));
    k.append(reinterpret_cast<const char*>(&a.sin_addr), sizeof(a.sin_addr));
    return k;
  }
  const sockaddr_in6& a = to.u.v6;
  std::string k(1, '6');
  k.append(reinterpret_cast<const char*>(&a.sin6_port), sizeof(a.sin6_port));
  k.append(reinterpret_cast<const char*>(&a.sin6_addr), sizeof(a.sin6_addr));
  k.append(reinterpret_cast<const char*>(&a.sin6_scope_id), sizeof(a.sin6_scope_id));
  return k;
}
}  // namespace

PmtuEntry* PathMtuTable::Find(const SockAddr& to) {
  auto it = entries_.find(AddrKey(to));
  return it == entries_.end() ? nullptr : &it->second;
}

PmtuEntry* PathMtuTable::Insert(const SockAddr& to) {
  if (entries_.size() >= kMaxEntries) {
    // Forget the entry checked longest ago; it is re-read when next used.
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.checked_ms < oldest->second.checked_ms) oldest = it;
    }
    entries_.erase(oldest);
  }
  PmtuEntry& e = entries_[AddrKey(to)];
  e = PmtuEntry{};
  e.to = to;
  return &e;
}

uint32_t PathMtuTable::Get(const SockAddr& to) {
  int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  PmtuEntry* e = Find(to);
  if (e != nullptr && now - e->checked_ms < kRecheckMs) return e->mtu;
  uint32_t mtu = ReadKernel(to);
  if (e == nullptr) e = Insert(to);
  // A prober's value stands until the kernel reports something smaller.
  if (e->source == PmtuSource::kProbe && e->mtu != 0 && (mtu == 0 || e->mtu <= mtu)) {
    e->checked_ms = now;
    return e->mtu;
  }
  // Keep the "learnt from a send error" label while the kernel still reports that value.
  if (!(e->source == PmtuSource::kSendError && e->mtu == mtu)) e->source = mtu != 0 ? PmtuSource::kKernel : PmtuSource::kUnknown;
  e->mtu = mtu;
  e->checked_ms = now;
  return mtu;
}

uint32_t PathMtuTable::Refresh(const SockAddr& to) {
  int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mu_);
  PmtuEntry* e = Find(to);
  if (e == nullptr) e = Insert(to);
  uint32_t mtu = ReadKernel(to);
  if (e->mtu == 0 || mtu != e->mtu) e->source = mtu != 0 ? PmtuSource::kSendError : PmtuSource::kUnknown;
  e->mtu = mtu;
  e->checked_ms = now;
  return mtu;
}

void PathMtuTable::Set(const SockAddr& to, uint32_t mtu, PmtuSource source) {
  std::lock_guard<std::mutex> lock(mu_);
  PmtuEntry* e = Find(to);
  if (e == nullptr) e = Insert(to);
  e->mtu = mtu;
  e->source = source;
  e->checked_ms = NowMs();
}

bool PathMtuTable::Peek(const SockAddr& to, PmtuEntry* out) {
  std::lock_guard<std::mutex> lock(mu_);
  PmtuEntry* e = Find(to);
  if (e == nullptr) return false;
  *out = *e;
  return true;
}

}  // namespace tswg
