// Reading and changing a network interface's MTU and flags with netdevice ioctls.
//
// The ioctls go through a control socket; they act on the network namespace the socket was
// created in, not the calling thread's, which is what lets a TUN opened inside another
// namespace be managed from here.
#pragma once

#include <string>

namespace tswg {

// Each returns 0 or an errno value.
int OpenControlSocket(int* out_fd);
int GetInterfaceMtu(int ctl_fd, const std::string& name, int* out_mtu);
int SetInterfaceMtu(int ctl_fd, const std::string& name, int mtu);
int GetInterfaceFlags(int ctl_fd, const std::string& name, unsigned* out_flags);
int InterfaceExists(int ctl_fd, const std::string& name, bool* out_exists);

}  // namespace tswg
