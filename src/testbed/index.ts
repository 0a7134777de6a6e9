/**
 * Test beds and NAT topologies built from Linux network namespaces, for tswg's own tests and for
 * anyone who wants to try WireGuard, ICE or their own software across NATs. See docs/testbed.md.
 */
export * from "./netns.js";
export { formatArgv, runCommand, type ExitStatus } from "./proc.js";
export { missingCommands, topologyUnavailableReason } from "./privileges.js";
export { creatorPid, namespaceName } from "./names.js";
export { Subnet } from "./subnet.js";
export { NAT_MAPPINGS, natRuleset, type NatMapping } from "./nat.js";
export { Firewall, firewallRuleset, type FirewallFamily, type FirewallMatch, type FirewallOptions } from "./firewall.js";
export {
  Nat,
  NetNode,
  Segment,
  Topology,
  withTopology,
  type AttachOptions,
  type Attachment,
  type TopologyHostOptions,
  type NatOptions,
  type NodeKind,
  type RouterOptions,
} from "./topology.js";
export { Coturn, coturnConfig, coturnUnavailableReason, startCoturn, type CoturnOptions } from "./coturn.js";
export { buildKernelVm, kernelVmUnavailableReason, moduleLoadOrder, runKernelVm, type KernelVmBuildOptions, type KernelVmImage, type KernelVmResult, type KernelVmRunOptions } from "./kernel-vm.js";
export { cpioArchive, type CpioEntry } from "./cpio.js";
export { bindingRequest, parseBindingResponse, type MappedAddress } from "../stun/message.js";
export {
  reflectedAddresses,
  startReflector,
  stunMappedAddresses,
  stunMappedAddressOverStream,
  tcpReflectedAddress,
  udpExchange,
  type CommandRunner,
  type ExchangeOptions,
  type ExchangeResult,
  type ProbeResult,
  type Reflector,
  type StreamStunOptions,
  type StreamStunResult,
  type ReflectorOptions,
  type Target,
} from "./probe.js";
