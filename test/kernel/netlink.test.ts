import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { attr, bytes, decodeAttrs, decodeMessages, encodeMessage, nested, str, u16, u32 } from "../../src/kernel/netlink.js";
import { parseDeviceDump, setDeviceMessages } from "../../src/kernel/wireguard-genl.js";
import { parseSet, formatSet } from "../../src/uapi/protocol.js";
import type { UapiPeerChange } from "../../src/uapi/types.js";

function peer(i: number, ips: string[]): UapiPeerChange {
  return { publicKey: randomBytes(32), remove: false, updateOnly: false, endpoint: `192.0.2.${1 + (i % 250)}:${10000 + i}`, persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: ips, removeAllowedIps: [] };
}

/** The attributes of each SET message as the kernel would see them (after the 4-byte genl header). */
function wire(messages: ReturnType<typeof setDeviceMessages>): Buffer[] {
  return messages.map((attrs, i) => decodeMessages(encodeMessage(0x1a, 5, i, Buffer.alloc(4), attrs))[0]!.payload.subarray(4));
}

describe("netlink encoding", () => {
  it("round-trips a message with nested attributes, padding included", () => {
    const buf = encodeMessage(16, 0x405, 7, Buffer.from([1, 2, 3]), [str(3, "wg0"), nested(18, [str(1, "wireguard"), u16(2, 0x1234)]), u32(4, 1420), bytes(9, Uint8Array.of(9))]);
    expect(buf.length % 4).toBe(0);
    const [m] = decodeMessages(buf);
    expect(m).toMatchObject({ type: 16, flags: 0x405, seq: 7 });
    const attrs = decodeAttrs(m!.payload.subarray(4));
    expect(attrs.map((a) => a.type)).toEqual([3, 18, 4, 9]);
    expect(attr(attrs, 3)!.toString()).toBe("wg0\0");
    const inner = decodeAttrs(attr(attrs, 18)!);
    expect(attr(inner, 1)!.toString()).toBe("wireguard\0");
    expect(attr(inner, 2)!.readUInt16LE(0)).toBe(0x1234);
    expect(attr(attrs, 4)!.readUInt32LE(0)).toBe(1420);
  });

  it("rejects a truncated message instead of reading past it", () => {
    const buf = encodeMessage(16, 0, 1, Buffer.alloc(16), [u32(4, 1)]);
    expect(() => decodeMessages(buf.subarray(0, buf.length - 4))).toThrow(/malformed/);
  });
});

describe("WireGuard generic netlink messages", () => {
  it("splits 1000 peers over bounded messages and carries every field", () => {
    const peers = Array.from({ length: 1000 }, (_, i) => peer(i, [`10.${100 + (i >> 8)}.${i & 255}.0/24`, `fd00:${i.toString(16)}::/64`]));
    peers[3]!.presharedKey = randomBytes(32);
    const msgs = setDeviceMessages("wg0", { privateKey: randomBytes(32), listenPort: 51820, fwmark: 7, replacePeers: true, peers });
    expect(msgs.length).toBeGreaterThan(1);
    const parts = wire(msgs);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(16 * 1024 + 64);
    const state = parseDeviceDump(parts);
    expect(state.listenPort).toBe(51820);
    expect(state.fwmark).toBe(7);
    expect(state.peers).toHaveLength(1000);
    expect(state.peers[999]!.allowedIps).toEqual(["10.103.231.0/24", "fd00:3e7::/64"]);
    expect(state.peers[5]!.endpoint).toBe("192.0.2.6:10005");
    expect(state.peers[5]!.persistentKeepalive).toBe(25);
    expect(Buffer.from(state.peers[3]!.presharedKey!)).toEqual(Buffer.from(peers[3]!.presharedKey!));
    // Only the first message replaces the peer list.
    expect(parts.filter((p) => attr(decodeAttrs(p), 5) !== undefined)).toHaveLength(1);
  });

  it("continues a peer with many allowed IPs in the next message without replacing them again", () => {
    const ips = Array.from({ length: 3000 }, (_, i) => `10.${i >> 8}.${i & 255}.1/32`);
    const msgs = setDeviceMessages("wg0", { replacePeers: false, peers: [peer(1, ips)] });
    expect(msgs.length).toBeGreaterThan(2);
    const parts = wire(msgs);
    const flags = parts.map((p) => attr(decodeAttrs(attr(decodeAttrs(p), 8)!).map((e) => decodeAttrs(e.data))[0]!, 3)!.readUInt32LE(0));
    expect(flags[0]! & 2).toBe(2); // replace allowed IPs: first part only
    for (const f of flags.slice(1)) expect(f & 6).toBe(4); // then update-only, adding
    expect(parseDeviceDump(parts).peers[0]!.allowedIps).toEqual(ips);
  });

  it("turns the removal of an allowed IP into a replace with what remains", () => {
    const key = randomBytes(32);
    const current = [{ publicKey: key, allowedIps: ["10.0.0.0/24", "fd00::/64"], persistentKeepalive: 0, lastHandshakeMs: 0, txBytes: 0n, rxBytes: 0n, protocolVersion: 1 as const }];
    const msgs = setDeviceMessages("wg0", { replacePeers: false, peers: [{ publicKey: key, remove: false, updateOnly: true, replaceAllowedIps: false, allowedIps: ["10.1.0.0/16"], removeAllowedIps: ["fd00:0::/64"] }] }, current);
    expect(parseDeviceDump(wire(msgs)).peers[0]!.allowedIps).toEqual(["10.0.0.0/24", "10.1.0.0/16"]);
  });
});

describe("UAPI set requests", () => {
  it("formatSet writes what parseSet reads", () => {
    const req = { privateKey: randomBytes(32), listenPort: 51820, fwmark: 3, replacePeers: true, peers: [peer(1, ["10.0.0.0/24"]), { ...peer(2, []), remove: true }] };
    req.peers[0]!.presharedKey = null;
    req.peers[0]!.removeAllowedIps = ["10.9.0.0/16"];
    const back = parseSet(formatSet(req));
    expect(back.listenPort).toBe(51820);
    expect(back.fwmark).toBe(3);
    expect(back.replacePeers).toBe(true);
    expect(back.peers[0]).toMatchObject({ endpoint: "192.0.2.2:10001", persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: ["10.0.0.0/24"], removeAllowedIps: ["10.9.0.0/16"], presharedKey: null });
    expect(back.peers[1]!.remove).toBe(true);
  });
});
