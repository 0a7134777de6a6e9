/**
 * tswg as a library: a WireGuard device for Node programs, its parts, and the wg-quick layer.
 * See docs/library.md for a walk-through.
 */
export { Device, type DeviceOptions, type DeviceStatus, type PeerConfig, type PeerStatus } from "./device/device.js";
export { deviceUapiHandler } from "./device/uapi-handler.js";
export { up, currentConfig, type RunningInterface, type UpOptions } from "./quick/quick.js";
export { recoverCrashed } from "./quick/journal.js";
export type { Bind, Endpoint, OpenResult, Received, ReceiveFunc } from "./bind/bind.js";
export { UdpBind, type UdpBindOptions } from "./bind/udp.js";
export type { Tun, TunEvent } from "./tun/tun.js";
export { createLinuxTun, LinuxTun, type LinuxTunOptions } from "./tun/linux.js";
export { addAddress, addRoute, setLinkUp, setMtu, IpCommandError, type IpOptions } from "./tun/linux-ifconfig.js";
export { MemoryTun, type MemoryTunOptions } from "./tun/memory.js";
export { Netstack, netstackAvailability, type NetstackOptions, type ConnectOptions, type FlowHandler, type TcpFlow, type UdpDatagram } from "./netstack/netstack.js";
export { NetstackSocket } from "./netstack/tcp-socket.js";
export { NetstackServer } from "./netstack/tcp-server.js";
export { NetstackUdpSocket, type NetstackRemoteInfo } from "./netstack/udp-socket.js";
export { UapiServer } from "./uapi/server.js";
export { uapiGet, uapiRequest, listInterfaces } from "./uapi/client.js";
export { parseConfig, formatConfig, type QuickConfig, type QuickInterface, type QuickPeer } from "./conf/wgquick.js";
export { ConfigError } from "./conf/error.js";
export { resolveConfigPath } from "./conf/locate.js";
export { defaultBackend, getBackend, registerBackend, type CryptoBackend } from "./crypto/index.js";
export { generatePresharedKey, keyToBase64, parseKey } from "./crypto/keys.js";
export { Engine, type Clock, type Output, type PeerHandle } from "./noise/engine.js";
export { createLogger, type Logger, type LogLevel } from "./log/logger.js";
// Kernel mode: ICE beside the kernel's WireGuard or a userspace one (docs/kernel-mode.md).
export { detectKernelWireGuard, type KernelModuleStatus } from "./kernel/detect.js";
export { KernelWireGuard } from "./kernel/wireguard-genl.js";
export { UapiWireGuard, type WireGuardControl } from "./kernel/control.js";
export { Rtnl, type LinkInfo } from "./kernel/rtnl.js";
export { IceBeside, type IceBesideOptions, type PeerShareStatus } from "./kernel/ice-beside.js";
export { chooseShareMode, parseShareMode, SHARE_MODES, type ShareMode, type ShareModeSetting } from "./kernel/port-share.js";

import { defaultBackend } from "./crypto/index.js";

/** A new X25519 key pair as base64 strings, the form configuration files use. */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const b = defaultBackend();
  const priv = b.generatePrivateKey();
  const toB64 = (k: Uint8Array) => Buffer.from(k).toString("base64");
  return { privateKey: toB64(priv), publicKey: toB64(b.publicKey(priv)) };
}
