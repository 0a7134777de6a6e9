/**
 * Endpoints of the TCP (UoTLV/1) Bind. Two kinds:
 *
 * - a server URL ("https://vpn.example.org/proxyguard"): what a peer's configuration names;
 *   the Bind opens a connection to it when there is something to send;
 * - an accepted connection: where an incoming client's datagrams came from. Each connection is
 *   an endpoint of its own, even when many arrive through one reverse proxy; it prints as the
 *   TCP peer's address, and it stops working when that connection ends.
 */
import type { Bind, Endpoint } from "./bind.js";
import { formatAddrPort, parseAddrPort } from "./addr-port.js";
import type { TunnelUrl } from "../uotlv/url.js";

export class TcpUrlEndpoint implements Endpoint {
  readonly key: string;

  constructor(
    readonly bind: Bind,
    readonly url: TunnelUrl,
  ) {
    this.key = `tcp:${url.href}`;
  }

  dstToString(): string {
    return this.url.href;
  }

  /** The URL's bytes: it names the destination; no address is known before connecting. */
  dstToBytes(): Uint8Array {
    return Buffer.from(this.url.href, "utf8");
  }

  /** "": a URL endpoint has no single IP address. */
  dstIP(): string {
    return "";
  }

  toString(): string {
    return this.url.href;
  }
}

export class TcpConnectionEndpoint implements Endpoint {
  readonly key: string;
  private readonly text: string;
  private readonly address: string;
  private readonly bytes: Uint8Array;

  /**
   * @param remote the TCP peer as "ip:port" / "[ip]:port" (IPv4-mapped IPv6 becomes IPv4)
   * @param serial distinguishes connections from the same address and port over time
   */
  constructor(
    readonly bind: Bind,
    remote: string,
    readonly serial: number,
  ) {
    const a = parseAddrPort(remote);
    this.text = formatAddrPort(a.family, a.address, a.zone, a.port);
    this.address = a.zone ? `${a.address}%${a.zone}` : a.address;
    this.bytes = new Uint8Array(a.bytes.length + 2);
    this.bytes.set(a.bytes, 0);
    this.bytes[a.bytes.length] = a.port >>> 8;
    this.bytes[a.bytes.length + 1] = a.port & 0xff;
    this.key = `tcp:${this.text}#${serial}`;
  }

  dstToString(): string {
    return this.text;
  }

  /** The TCP peer's address and port, as a UDP endpoint's. */
  dstToBytes(): Uint8Array {
    return this.bytes;
  }

  dstIP(): string {
    return this.address;
  }

  toString(): string {
    return this.text;
  }
}
