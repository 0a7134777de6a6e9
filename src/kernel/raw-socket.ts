/**
 * The WireGuard device's own UDP port as ICE's shared socket, without owning it: one raw UDP
 * socket per address family whose BPF filter passes only STUN (and TURN ChannelData) sent to the
 * port. The device keeps receiving every datagram as before and drops what is not WireGuard;
 * the raw socket gets its own copy of the STUN. What ICE sends gets a hand-built UDP header with
 * the device's port as source, so peers, NATs and firewalls see one port for ICE and WireGuard.
 *
 * Receive: 1. the event loop reports the raw socket readable; 2. each queued packet is read
 * (IPv4 with its IP header, whose length is read from the IHL; IPv6 from the UDP header);
 * 3. the UDP header is checked and stripped; 4. the payload goes to the listeners with the
 * sender's address and port.
 * Send: 1. an 8-byte UDP header (source = the device's port) is put before the payload; 2. the
 * kernel adds the IP header (IPv6: and the UDP checksum; IPv4 leaves it 0, "none", RFC 768).
 *
 * IPv6 link-local peers (fe80::/10) are left out both ways, counted in `linkLocal`: such an
 * address means nothing without the interface it is on, and neither ICE's candidates nor the
 * device's endpoint can carry that zone. ICE never offers or accepts link-local candidates
 * either; this keeps a check that arrives from one (a peer-reflexive candidate) from becoming a
 * pair that could only be answered on a guessed interface.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { PacketListener, PacketSocket } from "../stun/packet-socket.js";
import { requireKernelAddon, type KernelAddon } from "./addon.js";
import { encodeFilter, stunFilter } from "./stun-filter.js";

const UDP_HEADER = 8;

export interface RawSocketStats {
  received: number;
  sent: number;
  /** Packets too short or inconsistent to be UDP for our port. */
  malformed: number;
  /** Sends the kernel refused (no route, unreachable family, ...). */
  sendErrors: number;
  /** Receive errors other than "nothing queued". */
  receiveErrors: number;
  /** IPv6 link-local peers left out (received from, or asked to send to). */
  linkLocal: number;
}

/** fe80::/10, in any spelling of the address. */
export function isIPv6LinkLocal(address: string): boolean {
  const bare = address.replace(/%.*$/, "");
  return isIPv6(bare) && /^fe[89ab][0-9a-f]:/i.test(bare);
}

export class RawPacketSocket implements PacketSocket {
  private readonly addon: KernelAddon;
  private fd4: number | null = null;
  private fd6: number | null = null;
  private readonly listeners = new Set<PacketListener>();
  private readonly counters: RawSocketStats = { received: 0, sent: 0, malformed: 0, sendErrors: 0, receiveErrors: 0, linkLocal: 0 };
  /** Why IPv6 is not shared (no IPv6 in this namespace, ...), or null when it is. */
  readonly ipv6Unavailable: string | null;

  /**
   * Opens the raw sockets for the device's `port`. Throws when not even IPv4 can be opened
   * (no CAP_NET_RAW, no addon); IPv6 is optional.
   */
  constructor(
    readonly port: number,
    addon: KernelAddon = requireKernelAddon(),
  ) {
    this.addon = addon;
    this.fd4 = this.open(4);
    let why: string | null = null;
    try {
      this.fd6 = this.open(6);
    } catch (e) {
      why = e instanceof Error ? e.message : String(e);
    }
    this.ipv6Unavailable = why;
  }

  private open(family: 4 | 6): number {
    const fd = this.addon.rawOpen(family, encodeFilter(stunFilter(family, this.port, { channelData: true })));
    try {
      this.addon.rawWatch(fd, () => this.drain(fd, family));
    } catch (e) {
      this.addon.close(fd);
      throw e;
    }
    return fd;
  }

  get localPort(): number | null {
    return this.fd4 === null && this.fd6 === null ? null : this.port;
  }

  reachableFamilies(): { ipv4: boolean; ipv6: boolean } {
    return { ipv4: this.fd4 !== null, ipv6: this.fd6 !== null };
  }

  stats(): RawSocketStats {
    return { ...this.counters };
  }

  onPacket(listener: PacketListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  sendPacket(data: Uint8Array, address: string, port: number): void {
    const v6 = isIPv6(address);
    if (v6 && isIPv6LinkLocal(address)) {
      this.counters.linkLocal++;
      return;
    }
    const fd = v6 ? this.fd6 : isIPv4(address) ? this.fd4 : null;
    if (fd === null || port < 1 || port > 65535 || data.byteLength > 65535 - UDP_HEADER) {
      this.counters.sendErrors++;
      return;
    }
    const packet = Buffer.allocUnsafe(UDP_HEADER + data.byteLength);
    packet.writeUInt16BE(this.port, 0);
    packet.writeUInt16BE(port, 2);
    packet.writeUInt16BE(packet.length, 4);
    packet.writeUInt16BE(0, 6);
    packet.set(data, UDP_HEADER);
    try {
      this.addon.rawSend(fd, packet, address);
      this.counters.sent++;
    } catch {
      this.counters.sendErrors++;
    }
  }

  private drain(fd: number, family: 4 | 6): void {
    // Bounded, so a flood cannot hold the event loop; the watch fires again for what is left.
    for (let i = 0; i < 256; i++) {
      if (fd !== this.fd4 && fd !== this.fd6) return;
      let m: { data: Buffer; address: string } | null;
      try {
        m = this.addon.rawRecv(fd);
      } catch {
        this.counters.receiveErrors++;
        return;
      }
      if (m === null) return;
      this.deliver(m.data, m.address, family);
    }
  }

  private deliver(pkt: Buffer, address: string, family: 4 | 6): void {
    let at = 0;
    if (family === 4) {
      if (pkt.length < 20 || pkt[0]! >> 4 !== 4) {
        this.counters.malformed++;
        return;
      }
      at = (pkt[0]! & 0x0f) * 4;
    }
    if (pkt.length < at + UDP_HEADER) {
      this.counters.malformed++;
      return;
    }
    const sport = pkt.readUInt16BE(at);
    const dport = pkt.readUInt16BE(at + 2);
    const length = pkt.readUInt16BE(at + 4);
    if (dport !== this.port || length < UDP_HEADER || at + length > pkt.length || sport === 0) {
      this.counters.malformed++;
      return;
    }
    if (family === 6 && isIPv6LinkLocal(address)) {
      this.counters.linkLocal++;
      return;
    }
    this.counters.received++;
    const payload = pkt.subarray(at + UDP_HEADER, at + length);
    for (const l of this.listeners) l(payload, address, sport);
  }

  /** Stops watching and closes both sockets. Idempotent. */
  close(): void {
    for (const fd of [this.fd4, this.fd6]) {
      if (fd === null) continue;
      this.addon.rawUnwatch(fd);
      this.addon.close(fd);
    }
    this.fd4 = null;
    this.fd6 = null;
  }
}
