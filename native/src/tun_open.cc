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

// Asks for the richest set of offloads the kernel accepts: with UDP segmentation, without it,
// then checksums only. Returns the accepted set (0 when none).
unsigned EnableOffloads(int fd) {
  const unsigned wanted[] = {kTunFCsum | kTunFTso4 | kTunFTso6 | kTunFUso4 | kTunFUso6,
                             kTunFCsum | kTunFTso4 | kTunFTso6, kTunFCsum};
  for (unsigned flags : wanted) {
    if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0) return flags;
  }
  return 0;
}

TunOpenResult OpenInCurrentNamespace(const std::string& name, bool offload) {
  TunOpenResult r;
  if (name.size() >= IFNAMSIZ) return Fail(std::move(r), EINVAL, "ifname");
  r.tun_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (r.tun_fd < 0) return Fail(std::move(r), errno, "open(/dev/net/tun)");

  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
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
  if (offload) {
    int hdr_size = 10;  // struct virtio_net_hdr, without the mergeable-buffers field
    if (ioctl(r.tun_fd, TUNSETVNETHDRSZ, &hdr_size) < 0) return Fail(std::move(r), errno, "ioctl(TUNSETVNETHDRSZ)");
    r.vnet = true;
    r.offloads = EnableOffloads(r.tun_fd);
  }

  int err = OpenControlSocket(&r.ctl_fd);
  if (err != 0) return Fail(std::move(r), err, "socket");
  return r;
}

}  // namespace

TunOpenResult OpenTun(const std::string& name, const std::string& netns_path, bool offload) {
  if (netns_path.empty()) return OpenInCurrentNamespace(name, offload);

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
    result = OpenInCurrentNamespace(name, offload);
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
