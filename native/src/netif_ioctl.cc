#include "netif_ioctl.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace tswg {

namespace {

int Request(int ctl_fd, unsigned long request, const std::string& name, struct ifreq* ifr) {
  if (name.empty() || name.size() >= IFNAMSIZ) return EINVAL;
  memcpy(ifr->ifr_name, name.c_str(), name.size() + 1);
  if (ioctl(ctl_fd, request, ifr) < 0) return errno;
  return 0;
}

}  // namespace

int OpenControlSocket(int* out_fd) {
  // Any socket family reaches the netdevice ioctls; AF_UNIX keeps working on hosts
  // built without IPv4.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  *out_fd = fd;
  return 0;
}

int GetInterfaceMtu(int ctl_fd, const std::string& name, int* out_mtu) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  int err = Request(ctl_fd, SIOCGIFMTU, name, &ifr);
  if (err == 0) *out_mtu = ifr.ifr_mtu;
  return err;
}

int SetInterfaceMtu(int ctl_fd, const std::string& name, int mtu) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_mtu = mtu;
  return Request(ctl_fd, SIOCSIFMTU, name, &ifr);
}

int GetInterfaceFlags(int ctl_fd, const std::string& name, unsigned* out_flags) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  int err = Request(ctl_fd, SIOCGIFFLAGS, name, &ifr);
  if (err == 0) *out_flags = static_cast<unsigned short>(ifr.ifr_flags);
  return err;
}

int InterfaceExists(int ctl_fd, const std::string& name, bool* out_exists) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  int err = Request(ctl_fd, SIOCGIFINDEX, name, &ifr);
  if (err == ENODEV) {
    *out_exists = false;
    return 0;
  }
  if (err == 0) *out_exists = true;
  return err;
}

}  // namespace tswg
