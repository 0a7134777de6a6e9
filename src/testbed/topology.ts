/**
 * A builder for test networks with NATs, on top of {@link TestBed}: segments (an Ethernet switch
 * each), hosts on them, NAT gateways with a private segment behind them, routers between
 * segments, and firewalls. Addresses and default routes are assigned as things are added, so a
 * scenario reads like its diagram. See docs/testbed.md.
 *
 * IPv4 only: it models the NATs that ICE has to get through, which are IPv4 NATs.
 */
import { installFirewall, type Firewall, type FirewallOptions } from "./firewall.js";
import { configureNat, NAT_MAPPINGS, rebindNat, type NatMapping } from "./nat.js";
import { TestBed, type ExecOptions, type ExecResult, type Host, type SpawnOptions, type TrackedProcess } from "./netns.js";
import { Subnet } from "./subnet.js";

/** Bridge name in a segment's namespace. */
const SWITCH_BRIDGE = "br0";

/**
 * One Ethernet segment: a bridge in its own namespace (for a plain segment) or in its NAT
 * gateway's namespace (for the private side of a NAT), and an IPv4 subnet to number it.
 */
export class Segment {
  private gw: NetNode | undefined;
  private readonly nodes: NetNode[] = [];

  /** @internal made by {@link Topology.segment} and {@link Topology.nat} */
  constructor(
    readonly topology: Topology,
    /** For messages and {@link Topology.describe}; a plain segment's label is also its host label. */
    readonly label: string,
    readonly subnet: Subnet,
    /** The namespace holding the bridge; a firewall on the segment goes there. */
    readonly owner: Host,
    /** The bridge interface in {@link owner}. */
    readonly bridge: string,
  ) {}

  get cidr(): string {
    return this.subnet.cidr;
  }

  /** The node whose address on this segment is everyone's default route, if any. */
  get gateway(): NetNode | undefined {
    return this.gw;
  }

  /** The default route's address for nodes on this segment, if there is a gateway. */
  get gatewayIp(): string | undefined {
    return this.gw?.addressOn(this);
  }

  /** Nodes attached so far, in order. */
  get members(): readonly NetNode[] {
    return this.nodes;
  }

  /** @internal */
  setGateway(node: NetNode): void {
    this.gw = node;
  }

  /** @internal */
  addMember(node: NetNode): void {
    this.nodes.push(node);
  }

  toString(): string {
    return `${this.label} (${this.cidr})`;
  }
}

/** A node's interface on one segment. */
export interface Attachment {
  segment: Segment;
  /** Interface name inside the node's namespace (eth0, eth1, ...; wan/lan on a NAT gateway). */
  ifname: string;
  /** The node's address there, without prefix. */
  ip: string;
}

export type NodeKind = "host" | "nat" | "router";

/** A namespace in a topology: a host, a NAT gateway or a router, with its addresses. */
export class NetNode {
  private readonly ifs: Attachment[] = [];
  private route: string | undefined;

  /** @internal made by {@link Topology} */
  constructor(
    readonly topology: Topology,
    readonly kind: NodeKind,
    readonly label: string,
    /** The underlying test-bed host: its `ip(...)`, `exec`, `spawn` and `ns`. */
    readonly host: Host,
  ) {}

  /** The namespace's name, for `ip netns exec` or tools that take it. */
  get ns(): string {
    return this.host.ns;
  }

  /** The address on the first segment the node joined (a NAT gateway's public address). */
  get ip(): string {
    const first = this.ifs[0];
    if (first === undefined) throw new Error(`${this.label} has no address yet`);
    return first.ip;
  }

  get attachments(): readonly Attachment[] {
    return this.ifs;
  }

  /** The default route's next hop, if the node has one. */
  get defaultRoute(): string | undefined {
    return this.route;
  }

  /** The node's address on `segment`; throws if it is not attached there. */
  addressOn(segment: Segment): string {
    const a = this.ifs.find((x) => x.segment === segment);
    if (a === undefined) throw new Error(`${this.label} is not attached to segment ${segment.label}`);
    return a.ip;
  }

  /** Runs a command in the node's namespace (see {@link Host.exec}). */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.host.exec(argv, opts);
  }

  /** Starts a tracked long-running process in the node's namespace (see {@link Host.spawn}). */
  spawn(argv: readonly string[], opts?: SpawnOptions): TrackedProcess {
    return this.host.spawn(argv, opts);
  }

  sysctl(key: string, value: string | number): Promise<void> {
    return this.host.sysctl(key, value);
  }

  /** @internal */
  addAttachment(a: Attachment): void {
    this.ifs.push(a);
  }

  /** @internal */
  setDefaultRoute(via: string): void {
    this.route = via;
  }

  toString(): string {
    return `${this.label} (${this.ifs.map((a) => `${a.ip} on ${a.segment.label}`).join(", ") || "unattached"})`;
  }
}

/** A NAT gateway: public side on {@link wan}, private segment {@link lan} behind it. */
export class Nat extends NetNode {
  /** @internal made by {@link Topology.nat} */
  constructor(
    topology: Topology,
    label: string,
    host: Host,
    readonly mapping: NatMapping,
    readonly wan: Segment,
  ) {
    super(topology, "nat", label, host);
  }

  private lanSegment: Segment | undefined;

  /** The private segment; hosts made with `{behind: nat}` are on it. */
  get lan(): Segment {
    if (this.lanSegment === undefined) throw new Error(`NAT ${this.label} is not finished`);
    return this.lanSegment;
  }

  /** The public address, the one peers and STUN servers see. */
  get wanIp(): string {
    return this.addressOn(this.wan);
  }

  /** The gateway address on the private segment. */
  get lanIp(): string {
    return this.addressOn(this.lan);
  }

  /** @internal */
  setLan(seg: Segment): void {
    this.lanSegment = seg;
  }

  /**
   * Rebinds every mapping (as a router does after a reboot): the current mappings are dropped and
   * new ones take external ports from `ports`, so a peer or server that knew the old ports no
   * longer reaches the hosts behind until they send again.
   */
  async rebind(ports: readonly [number, number]): Promise<void> {
    await rebindNat(this.host, { wanIf: "wan", mapping: this.mapping, ports });
  }
}

export interface TopologyHostOptions {
  /** Attach the host to this segment (the "internet", or any other). */
  on?: Segment;
  /** Put the host on this NAT gateway's private segment, with the gateway as default route. */
  behind?: Nat;
  /** The host's address; default the next free one in the segment. */
  ip?: string;
}

export interface NatOptions {
  /** The public side: the segment the gateway's "wan" interface joins. */
  wan: Segment;
  /** The private subnet behind it, e.g. "10.1.0.0/24". */
  lan: string;
  /** Default "endpoint-independent". */
  mapping?: NatMapping;
  /** Public address; default the next free one on `wan`. */
  wanIp?: string;
  /** Gateway address on the private side; default the first one (".1"). */
  lanIp?: string;
}

export interface RouterOptions {
  /** The segments it joins and forwards between (at least two). */
  segments: Segment[];
  /** Addresses by segment label; default the next free one on each. */
  ips?: Record<string, string>;
  /**
   * Segments whose default gateway it becomes. Default: every joined segment that has no
   * gateway yet. Nodes there without a default route get one via the router, now and later.
   */
  gatewayFor?: Segment[];
}

export interface AttachOptions {
  /** The address on the segment; default the next free one. */
  ip?: string;
}

/** The builder. Everything it makes lives in {@link bed} and goes away with {@link cleanup}. */
export class Topology {
  private readonly segs: Segment[] = [];
  private readonly allNodes: NetNode[] = [];
  private firewalls = 0;

  private constructor(readonly bed: TestBed) {}

  /** A new topology in a new test bed (see {@link TestBed.create} for requirements). */
  static async create(name = "net"): Promise<Topology> {
    return new Topology(await TestBed.create(name));
  }

  /** A topology built inside an existing test bed (cleaned up with it). */
  static on(bed: TestBed): Topology {
    return new Topology(bed);
  }

  get segments(): readonly Segment[] {
    return this.segs;
  }

  get nodes(): readonly NetNode[] {
    return this.allNodes;
  }

  /**
   * A new segment: a namespace named `label` holding a bridge, numbered from `cidr`. Nothing on it
   * routes anywhere else until a router becomes its gateway.
   */
  async segment(label: string, cidr: string): Promise<Segment> {
    const subnet = new Subnet(cidr);
    const owner = await this.bed.host(label);
    await makeBridge(owner, SWITCH_BRIDGE);
    const seg = new Segment(this, label, subnet, owner, SWITCH_BRIDGE);
    this.segs.push(seg);
    return seg;
  }

  /** A host on a segment (`on`) or behind a NAT gateway (`behind`); its interface is `eth0`. */
  async host(label: string, opts: TopologyHostOptions): Promise<NetNode> {
    if ((opts.on === undefined) === (opts.behind === undefined)) {
      throw new Error(`host ${label}: give exactly one of "on" (a segment) or "behind" (a NAT gateway)`);
    }
    if (opts.behind !== undefined && !(opts.behind instanceof Nat)) throw new Error(`host ${label}: "behind" must be a NAT gateway made by nat()`);
    const seg = opts.on ?? opts.behind!.lan;
    this.assertOurs(seg);
    const node = new NetNode(this, "host", label, await this.bed.host(label));
    this.allNodes.push(node);
    await this.connect(node, seg, "eth0", opts.ip);
    return node;
  }

  /**
   * A NAT gateway: interface `wan` on `opts.wan`, and a new private segment (bridge `lan` in the
   * gateway's own namespace) numbered from `opts.lan`, whose default gateway it is.
   */
  async nat(label: string, opts: NatOptions): Promise<Nat> {
    const mapping = opts.mapping ?? "endpoint-independent";
    if (!NAT_MAPPINGS.includes(mapping)) throw new Error(`nat ${label}: unknown mapping "${String(mapping)}"; use ${NAT_MAPPINGS.join(" or ")}`);
    this.assertOurs(opts.wan);
    const lanNet = new Subnet(opts.lan);
    if (lanNet.contains(opts.wan.subnet.network) || opts.wan.subnet.contains(lanNet.network)) {
      throw new Error(`nat ${label}: private subnet ${opts.lan} overlaps ${opts.wan.cidr}`);
    }
    const nat = new Nat(this, label, await this.bed.host(label, { forwarding: true }), mapping, opts.wan);
    this.allNodes.push(nat);
    await this.connect(nat, opts.wan, "wan", opts.wanIp);
    await makeBridge(nat.host, "lan");
    const lan = new Segment(this, `${label}-lan`, lanNet, nat.host, "lan");
    this.segs.push(lan);
    nat.setLan(lan);
    const lanIp = lanNet.allocate(opts.lanIp);
    await nat.host.ip(["addr", "add", lanNet.withPrefix(lanIp), "dev", "lan"]);
    nat.addAttachment({ segment: lan, ifname: "lan", ip: lanIp });
    lan.addMember(nat);
    lan.setGateway(nat);
    await configureNat(nat.host, { wanIf: "wan", mapping });
    return nat;
  }

  /** A router forwarding between segments (no NAT); interfaces `eth0`, `eth1`, ... */
  async router(label: string, opts: RouterOptions): Promise<NetNode> {
    if (opts.segments.length < 2) throw new Error(`router ${label}: needs at least two segments`);
    for (const s of opts.segments) this.assertOurs(s);
    if (new Set(opts.segments).size !== opts.segments.length) throw new Error(`router ${label}: a segment is listed twice`);
    const gatewayFor = opts.gatewayFor ?? opts.segments.filter((s) => s.gateway === undefined);
    for (const s of gatewayFor) {
      if (!opts.segments.includes(s)) throw new Error(`router ${label}: gatewayFor ${s.label} is not one of its segments`);
      if (s.gateway !== undefined) throw new Error(`router ${label}: segment ${s.label} already has gateway ${s.gateway.label}`);
    }
    const node = new NetNode(this, "router", label, await this.bed.host(label, { forwarding: true }));
    this.allNodes.push(node);
    // Become the gateway first so that joining does not give the router a route via itself.
    for (const s of gatewayFor) s.setGateway(node);
    for (const [i, s] of opts.segments.entries()) await this.connect(node, s, `eth${i}`, opts.ips?.[s.label]);
    for (const s of gatewayFor) for (const m of s.members) await this.routeVia(m, s);
    return node;
  }

  /** Attaches an existing node to one more segment (interface `eth<n>`). */
  async attach(node: NetNode, segment: Segment, opts: AttachOptions = {}): Promise<Attachment> {
    this.assertOurs(segment);
    if (node.topology !== this) throw new Error(`${node.label} belongs to another topology`);
    if (node.attachments.some((a) => a.segment === segment)) throw new Error(`${node.label} is already on segment ${segment.label}`);
    const n = node.attachments.filter((a) => /^eth\d+$/.test(a.ifname)).length;
    return this.connect(node, segment, `eth${n}`, opts.ip);
  }

  /**
   * Loads a firewall: on a node it filters what the node sends, receives and forwards (on a NAT
   * gateway: everything between its private segment and the outside); on a segment, what
   * crosses the segment's bridge. Several firewalls on one place all apply; `except` only
   * overrides drops of its own firewall. `remove()` on the result lifts it.
   */
  async firewall(target: NetNode | Segment, opts: FirewallOptions): Promise<Firewall> {
    const table = `tswgt_fw${++this.firewalls}`;
    if (target instanceof Segment) {
      this.assertOurs(target);
      return installFirewall(target.owner, "bridge", table, opts);
    }
    if (target.topology !== this) throw new Error(`${target.label} belongs to another topology`);
    return installFirewall(target.host, "inet", table, opts);
  }

  /** A plain-text picture of the topology, for logs and failure messages. */
  describe(): string {
    const lines: string[] = [];
    for (const s of this.segs) {
      const gw = s.gateway ? `, gateway ${s.gateway.label} ${s.gatewayIp}` : "";
      lines.push(`segment ${s.label} ${s.cidr}${gw}`);
      for (const m of s.members) {
        const a = m.attachments.find((x) => x.segment === s)!;
        const extra = m instanceof Nat ? (s === m.wan ? ` (NAT, ${m.mapping})` : "") : m.kind === "router" ? " (router)" : "";
        lines.push(`  ${m.label} ${a.ifname} ${a.ip}${extra}${m.defaultRoute && m.defaultRoute === s.gatewayIp ? " default route" : ""}`);
      }
    }
    return lines.join("\n");
  }

  /** Removes everything (see {@link TestBed.cleanup}). */
  cleanup(): Promise<void> {
    return this.bed.cleanup();
  }

  private assertOurs(seg: Segment): void {
    if (!(seg instanceof Segment) || seg.topology !== this) throw new Error(`segment ${String(seg)} belongs to another topology`);
  }

  private async connect(node: NetNode, seg: Segment, ifname: string, wanted: string | undefined): Promise<Attachment> {
    const ip = seg.subnet.allocate(wanted);
    const link = await this.bed.link(node.host, seg.owner, { ifA: ifname, a: seg.subnet.withPrefix(ip) });
    await seg.owner.ip(["link", "set", link.b.ifname, "master", seg.bridge]);
    const att: Attachment = { segment: seg, ifname, ip };
    node.addAttachment(att);
    seg.addMember(node);
    await this.routeVia(node, seg);
    return att;
  }

  /** Gives `node` a default route via `seg`'s gateway unless it has one or is that gateway. */
  private async routeVia(node: NetNode, seg: Segment): Promise<void> {
    const gw = seg.gateway;
    if (node.defaultRoute !== undefined || gw === undefined || gw === node) return;
    const via = gw.addressOn(seg);
    await node.host.ip(["route", "add", "default", "via", via]);
    node.setDefaultRoute(via);
  }
}

/** Runs `fn` with a new topology and always cleans it up (the error from `fn` wins). */
export async function withTopology<R>(name: string, fn: (net: Topology) => Promise<R>): Promise<R> {
  const net = await Topology.create(name);
  let result: R;
  try {
    result = await fn(net);
  } catch (e) {
    await net.cleanup().catch(() => {});
    throw e;
  }
  await net.cleanup();
  return result;
}

async function makeBridge(host: Host, name: string): Promise<void> {
  await host.ip(["link", "add", name, "type", "bridge"]);
  await host.ip(["link", "set", name, "up"]);
  // With br_netfilter loaded, bridged frames would also pass this namespace's IP firewall and
  // NAT rules; a switch (or the private side of a NAT) must not filter traffic between its ports.
  for (const key of ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"]) {
    await host.exec(["sysctl", "-qw", `net.bridge.${key}=0`], { check: false });
  }
}
