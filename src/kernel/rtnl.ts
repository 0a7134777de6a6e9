/**
 * Links, addresses and routes over rtnetlink: what `ip link/address/route` would do for a
 * WireGuard interface, without a process per change.
 */
import { parseCidr } from "../allowedips/prefix.js";
import { NETLINK_ROUTE, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NetlinkSocket, NlAttrs, NlWriter } from "./netlink.js";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const IFF_UP = 0x1;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

export interface LinkInfo {
  index: number;
  name: string;
  kind: string | null;
  up: boolean;
  mtu: number;
}

function ifinfomsg(index: number, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** rtnetlink operations on one socket. */
export class Rtnl {
  private readonly sock = new NetlinkSocket(NETLINK_ROUTE);

  close(): void {
    this.sock.close();
  }

  /** Creates a link of `kind` (e.g. "wireguard"). Throws NetlinkError (EEXIST, EOPNOTSUPP when the kind is unknown, ...). */
  createLink(name: string, kind: string, mtu?: number): void {
    const w = new NlWriter().begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0));
    w.str(IFLA_IFNAME, name);
    const info = w.nest(IFLA_LINKINFO);
    w.str(IFLA_INFO_KIND, kind);
    w.close(info);
    if (mtu !== undefined) w.u32(IFLA_MTU, mtu);
    this.sock.request(w.end(), `creating ${kind} link ${name}`);
  }

  deleteLink(name: string): void {
    const w = new NlWriter().begin(RTM_DELLINK, 0, ifinfomsg(0));
    w.str(IFLA_IFNAME, name);
    this.sock.request(w.end(), `deleting link ${name}`);
  }

  /** The link named `name`, or null when there is none. */
  getLink(name: string): LinkInfo | null {
    try {
      const w = new NlWriter().begin(RTM_GETLINK, 0, ifinfomsg(0));
      w.str(IFLA_IFNAME, name);
      const [m] = this.sock.request(w.end(), `reading link ${name}`);
      if (m === undefined) return null;
      const link: LinkInfo = { index: m.payload.readInt32LE(4), name, kind: null, up: (m.payload.readUInt32LE(8) & IFF_UP) !== 0, mtu: 0 };
      for (const a = new NlAttrs(m.payload, 16); a.next(); ) {
        if (a.type === IFLA_IFNAME) link.name = a.str();
        else if (a.type === IFLA_MTU) link.mtu = a.u32();
        else if (a.type === IFLA_LINKINFO) {
          const info = a.nested();
          if (info.find(IFLA_INFO_KIND)) link.kind = info.str();
        }
      }
      return link;
    } catch (e) {
      if ((e as { code?: string }).code === "ENODEV") return null;
      throw e;
    }
  }

  private index(name: string): number {
    const l = this.getLink(name);
    if (l === null) throw new Error(`no interface ${name}`);
    return l.index;
  }

  /** Sets the link up or down, and its MTU when given. */
  setLink(name: string, opts: { up?: boolean; mtu?: number }): void {
    const index = this.index(name);
    const change = opts.up === undefined ? 0 : IFF_UP;
    const w = new NlWriter().begin(RTM_NEWLINK, 0, ifinfomsg(index, opts.up === true ? IFF_UP : 0, change));
    if (opts.mtu !== undefined) w.u32(IFLA_MTU, opts.mtu);
    this.sock.request(w.end(), `changing link ${name}`);
  }

  /** Adds (or keeps) address/prefix on the link. */
  addAddress(name: string, cidr: string): void {
    const { family, bytes, len } = cidrParts(cidr);
    const fixed = Buffer.alloc(8);
    fixed.writeUInt8(family, 0);
    fixed.writeUInt8(len, 1);
    fixed.writeUInt8(RT_SCOPE_UNIVERSE, 3);
    fixed.writeUInt32LE(this.index(name), 4);
    const w = new NlWriter().begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, fixed);
    w.bytes(IFA_LOCAL, bytes);
    w.bytes(IFA_ADDRESS, bytes);
    this.sock.request(w.end(), `adding ${cidr} to ${name}`);
  }

  /** Routes `cidr` through the link (main table, link scope), replacing a route to the same prefix. */
  addRoute(name: string, cidr: string): void {
    this.route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, name, cidr);
  }

  deleteRoute(name: string, cidr: string): void {
    this.route(RTM_DELROUTE, 0, name, cidr);
  }

  private route(type: number, flags: number, name: string, cidr: string): void {
    const { family, bytes, len } = cidrParts(cidr);
    const fixed = Buffer.from([family, len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_LINK, RTN_UNICAST, 0, 0, 0, 0]);
    const oif = this.index(name);
    const w = new NlWriter().begin(type, flags, fixed);
    w.bytes(RTA_DST, bytes);
    w.u32(RTA_OIF, oif);
    this.sock.request(w.end(), `${type === RTM_NEWROUTE ? "adding" : "deleting"} route ${cidr} via ${name}`);
  }
}

/** Address family, bytes and prefix length of "address/len" (a bare address is a host prefix). */
function cidrParts(cidr: string): { family: number; bytes: Uint8Array; len: number } {
  const p = parseCidr(cidr);
  return { family: p.family === 4 ? AF_INET : AF_INET6, bytes: p.bytes, len: p.bits };
}
