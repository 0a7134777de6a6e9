// Creating (or attaching to) a Linux TUN interface, optionally inside another network namespace.
#pragma once

#include <string>

namespace tswg {

struct TunOpenResult {
  int tun_fd = -1;  // non-blocking, close-on-exec; the interface lives as long as it is open
  int ctl_fd = -1;  // control socket in the interface's namespace (see netif_ioctl.h)
  std::string name;  // actual name: the kernel expands templates such as "tswg%d"
  int err = 0;       // errno of the failed step, 0 on success
  std::string syscall;  // the failed step, for error messages
  bool vnet = false;    // packets carry a virtio-net header (IFF_VNET_HDR)
  unsigned offloads = 0;  // TUN_F_* flags the kernel accepted (TUNSETOFFLOAD)
};

// TUN_F_* offload flags; the USO ones are newer than some system headers.
constexpr unsigned kTunFCsum = 0x01;
constexpr unsigned kTunFTso4 = 0x02;
constexpr unsigned kTunFTso6 = 0x04;
constexpr unsigned kTunFUso4 = 0x20;
constexpr unsigned kTunFUso6 = 0x40;

// Opens /dev/net/tun as a layer-3 device without packet-information prefix (IFF_TUN |
// IFF_NO_PI). With `offload`, packets carry a virtio-net header (IFF_VNET_HDR) and the kernel
// is asked for checksum, TCP segmentation and, where it has them (Linux 6.2+), UDP
// segmentation offloads; whatever it refuses is left off. With a non-empty netns_path (e.g. "/var/run/netns/blue"), the interface and the
// control socket are created in that namespace: a short-lived thread enters it, because a TUN
// and a socket belong to the namespace of the thread that created them.
TunOpenResult OpenTun(const std::string& name, const std::string& netns_path, bool offload);

// Current name of the interface behind a TUN file descriptor (follows renames).
int TunInterfaceName(int tun_fd, std::string* out_name);

}  // namespace tswg
