import { describe, expect, it } from "vitest";
import { isIPv6LinkLocal, RawPacketSocket } from "../../src/kernel/raw-socket.js";
import { fakeAddon } from "./fake-kernel-addon.js";

/** A UDP header + payload as the IPv6 raw socket reads it. */
function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

describe("isIPv6LinkLocal", () => {
  it("is fe80::/10 in any spelling, with or without a zone, and nothing else", () => {
    for (const a of ["fe80::1", "FE80::1", "fe80:0:0:0:0:0:0:1", "febf:ffff::1", "fe80::1%eth0", "fe9a::2"]) expect(isIPv6LinkLocal(a), a).toBe(true);
    for (const a of ["fec0::1", "fe8::1", "fd00::1", "2001:db8::fe80", "::1", "169.254.1.1", "10.0.0.1", "not an address"]) expect(isIPv6LinkLocal(a), a).toBe(false);
  });
});

describe("RawPacketSocket (in-memory addon)", () => {
  const PORT = 51820;

  it("leaves IPv6 link-local peers out both ways, counted, and carries the others", () => {
    const f = fakeAddon();
    const sock = new RawPacketSocket(PORT, f.addon);
    const [fd4, fd6] = [...f.queue.keys()];
    const got: { data: string; address: string; port: number }[] = [];
    sock.onPacket((data, address, port) => got.push({ data: Buffer.from(data).toString(), address, port }));

    f.queue.get(fd6!)!.push({ data: udp(40000, PORT, Buffer.from("from-link-local")), address: "fe80::2" });
    f.queue.get(fd6!)!.push({ data: udp(40001, PORT, Buffer.from("from-ula")), address: "fd77::2" });
    f.readable.get(fd6!)!();
    expect(got).toEqual([{ data: "from-ula", address: "fd77::2", port: 40001 }]);

    sock.sendPacket(Buffer.from("x"), "fe80::2", 40000);
    sock.sendPacket(Buffer.from("x"), "fe80::2%eth0", 40000);
    sock.sendPacket(Buffer.from("reply"), "fd77::2", 40001);
    expect(f.sent.map((s) => s.address)).toEqual(["fd77::2"]);
    expect(f.sent[0]!.fd).toBe(fd6);
    // The hand-built UDP header: from the device's port to the peer's.
    expect(f.sent[0]!.packet.readUInt16BE(0)).toBe(PORT);
    expect(f.sent[0]!.packet.readUInt16BE(2)).toBe(40001);
    expect(f.sent[0]!.packet.subarray(8).toString()).toBe("reply");

    expect(sock.stats()).toMatchObject({ received: 1, sent: 1, linkLocal: 3, sendErrors: 0, malformed: 0 });
    expect(fd4).not.toBe(fd6);
    sock.close();
    expect(f.readable.size).toBe(0);
  });

  it("reads the IPv4 header length from the IHL and counts what is not UDP for the port", () => {
    const f = fakeAddon();
    const sock = new RawPacketSocket(PORT, f.addon);
    const [fd4] = [...f.queue.keys()];
    const got: string[] = [];
    sock.onPacket((data, address, port) => got.push(`${address}:${port} ${Buffer.from(data).toString()}`));
    const ip = (ihlWords: number, body: Buffer): Buffer => {
      const h = Buffer.alloc(ihlWords * 4);
      h[0] = 0x40 | ihlWords;
      h[9] = 17;
      return Buffer.concat([h, body]);
    };
    f.queue.get(fd4!)!.push({ data: ip(6, udp(40000, PORT, Buffer.from("with-options"))), address: "10.0.0.2" });
    f.queue.get(fd4!)!.push({ data: ip(5, udp(40000, PORT + 1, Buffer.from("other-port"))), address: "10.0.0.2" });
    f.queue.get(fd4!)!.push({ data: Buffer.from([0x45, 0, 0]), address: "10.0.0.2" });
    f.readable.get(fd4!)!();
    expect(got).toEqual(["10.0.0.2:40000 with-options"]);
    expect(sock.stats()).toMatchObject({ received: 1, malformed: 2, linkLocal: 0 });
    sock.close();
  });
});
