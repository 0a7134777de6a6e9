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
    /**
     * A TURN channel (0x4000-0x4FFF): the address is a TURN server's, and each datagram goes to
     * it as ChannelData on this channel, to be relayed to a peer. 0: a plain address.
     */
    readonly channel = 0,
  ) {
    this.text = formatAddrPort(family, address, zone, port);
    this.key = channel === 0 ? `udp:${this.text}` : `udp:${this.text}#${channel}`;
  }

  /** The same address reached through TURN channel `channel`. */
  withChannel(channel: number): UdpEndpoint {
    if (!Number.isInteger(channel) || channel < 0x4000 || channel > 0x4fff) throw new RangeError(`TURN channel ${channel} is not 0x4000-0x4FFF`);
    return new UdpEndpoint(this.bind, this.family, this.address, this.zone, this.port, this.addrBytes, channel);
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
    return this.channel === 0 ? this.text : `${this.text} (TURN channel 0x${this.channel.toString(16)})`;
  }
}
