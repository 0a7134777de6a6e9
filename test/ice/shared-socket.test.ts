/** The router that lets many ICE sessions share one socket, driven with an in-memory socket. */
import { describe, expect, it } from "vitest";
import { classes, Message, methods } from "werift-ice";
import { SharedSocketRouter } from "../../src/ice/shared-socket.js";
import type { PacketListener, PacketSocket } from "../../src/stun/packet-socket.js";

class FakeSocket implements PacketSocket {
  localPort: number | null = 51820;
  sent: { data: Uint8Array; address: string; port: number }[] = [];
  private listeners = new Set<PacketListener>();
  reachableFamilies() {
    return { ipv4: true, ipv6: true };
  }
  sendPacket(data: Uint8Array, address: string, port: number): void {
    this.sent.push({ data, address, port });
  }
  onPacket(l: PacketListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  deliver(data: Uint8Array, address: string, port: number): void {
    for (const l of this.listeners) l(data, address, port);
  }
}

function request(username?: string): Message {
  const m = new Message(methods.BINDING, classes.REQUEST);
  if (username !== undefined) m.setAttribute("USERNAME", username);
  return m;
}

describe("SharedSocketRouter", () => {
  it("routes requests by local ufrag and responses by transaction ID, and learns whose checks come from where", async () => {
    const sock = new FakeSocket();
    const router = new SharedSocketRouter(sock);
    const a = router.register("peerA", "ufA");
    const b = router.register("peerB", "ufB");
    const ta = a.transport("127.0.0.1", 4);
    const tb = b.transport("127.0.0.1", 4);
    const got: string[] = [];
    ta.onData = (_d, addr) => got.push(`a ${addr[0]}:${addr[1]}`);
    tb.onData = (_d, addr) => got.push(`b ${addr[0]}:${addr[1]}`);
    expect(ta.address.port).toBe(51820);

    sock.deliver(request("ufB:remote").bytes, "192.0.2.7", 4000);
    expect(got).toEqual(["b 192.0.2.7:4000"]);
    expect(router.peerAt("192.0.2.7", 4000)).toBe("peerB");

    // A check sent by A: its response finds A, whoever answers.
    const check = request("remote:ufA");
    await ta.send(check.bytes, ["192.0.2.9", 5000]);
    expect(sock.sent.at(-1)!.address).toBe("192.0.2.9");
    const response = new Message(methods.BINDING, classes.RESPONSE, check.transactionId);
    sock.deliver(response.bytes, "192.0.2.9", 5000);
    expect(got.at(-1)).toBe("a 192.0.2.9:5000");
    expect(router.peerAt("192.0.2.9", 5000)).toBe("peerA");

    // A query to a STUN server is routed back but does not make the server a peer's address.
    const query = request();
    await tb.send(query.bytes, ["198.51.100.1", 3478]);
    sock.deliver(new Message(methods.BINDING, classes.RESPONSE, query.transactionId).bytes, "198.51.100.1", 3478);
    expect(got.at(-1)).toBe("b 198.51.100.1:3478");
    expect(router.peerAt("198.51.100.1", 3478)).toBeNull();

    // Unknown ufrag, unknown transaction, ChannelData: counted, not delivered.
    const n = got.length;
    sock.deliver(request("nobody:x").bytes, "192.0.2.1", 1);
    sock.deliver(new Message(methods.BINDING, classes.RESPONSE).bytes, "192.0.2.1", 1);
    sock.deliver(Buffer.from([0x40, 0, 0, 0]), "192.0.2.1", 1);
    expect(got.length).toBe(n);
    expect(router.stats()).toMatchObject({ unclaimed: 2, channelData: 1 });

    // A closed session stops receiving, and its sources are forgotten.
    b.close();
    sock.deliver(request("ufB:remote").bytes, "192.0.2.7", 4000);
    expect(got.length).toBe(n);
    expect(router.peerAt("192.0.2.7", 4000)).toBeNull();
    await tb.send(request().bytes, ["192.0.2.7", 4000]);
    expect(sock.sent.length).toBe(2);

    expect(() => router.register("peerC", "ufA")).toThrow(/already in use/);
    router.close();
    sock.deliver(request("ufA:remote").bytes, "192.0.2.7", 4000);
    expect(got.length).toBe(n);
  });
});
