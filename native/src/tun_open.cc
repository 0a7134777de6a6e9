#include "tun_open.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <thread>

#include "netif_ioctl.h"

namespace tswg {

namespace {

TunOpenResult Fail(TunOpenResult r, int err, std::string syscall) {
  if (r.tun_fd >= 0) close(r.tun_fd);
  if (r.ctl_fd >= 0) close(r.ctl_fd);
  TunOpenResult failed;
  failed.err = err;
  failed.syscall = std::move(syscall);
  return failed;
}

TunOpenResult OpenInCurrentNamespace(const std::string& name) {
  TunOpenResult r;
  if (name.size() >= IFNAMSIZ) return Fail(std::move(r), EINVAL, "ifname");
  r.tun_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (r.tun_fd < 0) return Fail(std::move(r), errno, "open(/dev/net/tun)");

  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  memcpy(ifr.ifr_name, name.c_str(), name.size() + 1);
  if (ioctl(r.tun_fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    // EINVAL also means "a device of that name exists and is not a TUN like ours"; tell
    // the two apart so the caller can say which.
    if (err == EINVAL && !name.empty() && OpenControlSocket(&r.ctl_fd) == 0) {
      bool exists = false;
      if (InterfaceExists(r.ctl_fd, name, &exists) == 0 && exists) err = EEXIST;
    }
    return Fail(std::move(r), err, "ioctl(TUNSETIFF)");
  }
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  r.name = ifr.ifr_name;

  int err = OpenControlSocket(&r.ctl_fd);
  if (err != 0) return Fail(std::move(r), err, "socket");
  return r;
}

}  // namespace

TunOpenResult OpenTun(const std::string& name, const std::string& netns_path) {
  if (netns_path.empty()) return OpenInCurrentNamespace(name);

  TunOpenResult result;
  // setns() changes only the calling thread's namespace; a throw-away thread keeps the
  // JavaScript thread where it is.
  std::thread opener([&]() {
    int ns_fd = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fd < 0) {
      result.err = errno;
      result.syscall = "open(" + netns_path + ")";
      return;
    }
    if (setns(ns_fd, CLONE_NEWNET) < 0) {
      result.err = errno;
      result.syscall = "setns(" + netns_path + ")";
      close(ns_fd);
      return;
    }
    close(ns_fd);
    result = OpenInCurrentNamespace(name);
  });
  opener.join();
  return result;
}

int TunInterfaceName(int tun_fd, std::string* out_name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  if (ioctl(tun_fd, TUNGETIFF, &ifr) < 0) return errno;
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  *out_name = ifr.ifr_name;
  return 0;
}

}  // namespace tswg
