/**
 * A UDP destination: IP address (with IPv6 zone, if any) and port.
 */
import type { IpFamily } from "../allowedips/ip.js";
import type { Bind, Endpoint } from "./bind.js";
import { formatAddrPort, parseAddrPort } from "./addr-port.js";

export class UdpEndpoint implements Endpoint {
  /** "udp:" + {@link dstToString}, so keys of different transports never collide. */
  readonly key: string;
  private readonly text: string;
  private bytesCache: Uint8Array | null = null;

  constructor(
    readonly bind: Bind,
    readonly family: IpFamily,
    /** Canonical address text without zone or brackets. */
    readonly address: string,
    /** IPv6 zone ("eth0"), or "". */
    readonly zone: string,
    readonly port: number,
    private readonly addrBytes: Uint8Array,
  ) {
    this.text = formatAddrPort(family, address, zone, port);
    this.key = `udp:${this.text}`;
  }

  /** Parses "ip:port" / "[ip]:port" (see {@link parseAddrPort}) into an endpoint of `bind`. */
  static parse(bind: Bind, text: string): UdpEndpoint {
    const a = parseAddrPort(text);
    return new UdpEndpoint(bind, a.family, a.address, a.zone, a.port, a.bytes);
  }

  dstToString(): string {
    return this.text;
  }

  /** Address bytes (4 or 16) followed by the port, big-endian. The zone is not included. */
  dstToBytes(): Uint8Array {
    if (this.bytesCache === null) {
      const n = this.addrBytes.length;
      const out = new Uint8Array(n + 2);
      out.set(this.addrBytes, 0);
      out[n] = this.port >>> 8;
      out[n + 1] = this.port & 0xff;
      this.bytesCache = out;
    }
    return this.bytesCache;
  }

  dstIP(): string {
    return this.zone ? `${this.address}%${this.zone}` : this.address;
  }

  /** The 4 or 16 address bytes (shared: do not modify). */
  addressBytes(): Uint8Array {
    return this.addrBytes;
  }

  /** The address as node:dgram's `send` wants it (zone included). */
  sendAddress(): string {
    return this.dstIP();
  }

  toString(): string {
    return this.text;
  }
}
