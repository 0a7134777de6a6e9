import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import type { Endpoint, Received, ReceiveFunc } from "../../src/bind/bind.js";
import { BindClosedError } from "../../src/bind/errors.js";
import { UdpBind } from "../../src/bind/udp.js";
import { waitFor } from "../helpers/wait.js";

/** Binds opened in a test, closed afterwards whatever happens. */
const open: UdpBind[] = [];
function loopbackBind(opts: ConstructorParameters<typeof UdpBind>[0] = {}): UdpBind {
  const b = new UdpBind({ address4: "127.0.0.1", address6: "::1", ...opts });
  open.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

/** Pulls from `recv` until `n` datagrams arrived; fails after `ms` instead of hanging. */
async function collect(recv: ReceiveFunc, n: number, ms = 3000): Promise<Received[]> {
  const got: Received[] = [];
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`received ${got.length} of ${n} datagrams in ${ms} ms`);
    const batch = await Promise.race([recv(), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), left))]);
    if (batch === "timeout") continue;
    if (batch === null) throw new Error("receiver closed early");
    got.push(...batch);
  }
  return got;
}

const text = (r: Received): string => Buffer.from(r.data).toString();
const batchOf = (prefix: string, n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => Buffer.from(`${prefix}-${i}`));

describe("UdpBind on loopback", () => {
  it("exchanges batches over IPv4 both ways", async () => {
    const a = loopbackBind();
    const b = loopbackBind();
    const ra = await a.open(0);
    const rb = await b.open(0);
    expect(ra.port).toBeGreaterThan(0);
    expect(ra.receivers).toHaveLength(2); // IPv4 and IPv6

    await a.send(batchOf("ab", 20), a.parseEndpoint(`127.0.0.1:${rb.port}`));
    const atB = await collect(rb.receivers[0]!, 20);
    expect(atB.map(text)).toEqual(batchOf("ab", 20).map((d) => Buffer.from(d).toString()));
    const from = atB[0]!.endpoint;
    expect(from.dstToString()).toBe(`127.0.0.1:${ra.port}`);
    expect(from.bind).toBe(b);

    // Reply to the endpoint the datagram came from, as a device does.
    await b.send(batchOf("ba", 5), from);
    const atA = await collect(ra.receivers[0]!, 5);
    expect(atA.map(text)).toEqual(["ba-0", "ba-1", "ba-2", "ba-3", "ba-4"]);
    expect(a.stats()).toMatchObject({ sent: 20, received: 5, dropped: 0, sendErrors: 0 });
    expect(b.stats()).toMatchObject({ sent: 5, received: 20 });
  });

  it("exchanges batches over IPv6 on the IPv6 receiver", async () => {
    const a = loopbackBind();
    const b = loopbackBind();
    const ra = await a.open(0);
    const rb = await b.open(0);
    await a.send(batchOf("six", 16), a.parseEndpoint(`[::1]:${rb.port}`));
    const got = await collect(rb.receivers[1]!, 16);
    expect(got.map(text)).toEqual(batchOf("six", 16).map((d) => Buffer.from(d).toString()));
    expect(got[0]!.endpoint.dstToString()).toBe(`[::1]:${ra.port}`);
    expect(got[0]!.endpoint.key).toBe(a.parseEndpoint(`[::1]:${ra.port}`).key);
    await b.send([Buffer.from("back")], got[0]!.endpoint);
    expect((await collect(ra.receivers[1]!, 1)).map(text)).toEqual(["back"]);
  });

  it("returns receive batches no larger than batchSize()", async () => {
    const a = loopbackBind({ batchSize: 4 });
    const b = loopbackBind({ batchSize: 4 });
    await a.open(0);
    const rb = await b.open(0);
    const to = a.parseEndpoint(`127.0.0.1:${rb.port}`);
    for (let i = 0; i < 3; i++) await a.send(batchOf(`x${i}`, 4), to);
    await waitFor(() => b.stats().received === 12, { what: "12 datagrams queued" });
    const sizes: number[] = [];
    let total = 0;
    while (total < 12) {
      const batch = (await rb.receivers[0]!())!;
      sizes.push(batch.length);
      total += batch.length;
    }
    expect(sizes.every((n) => n >= 1 && n <= 4)).toBe(true);
    expect(sizes.length).toBe(3);
  });

  it("uses one port for both families when asked for port 0, and honours a fixed port", async () => {
    const a = new UdpBind(); // wildcard addresses, as a device binds
    open.push(a);
    const { port } = await a.open(0);
    expect(a.families).toEqual({ ipv4: true, ipv6: true });
    expect(a.port).toBe(port);
    // Both families really hold the port: nobody else can bind it.
    for (const type of ["udp4", "udp6"] as const) {
      const probe = dgram.createSocket({ type, ipv6Only: type === "udp6" });
      const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
        probe.once("error", resolve);
        probe.bind(port, () => resolve(null));
      });
      probe.close();
      expect(err?.code).toBe("EADDRINUSE");
    }
    await a.close();
    expect(a.port).toBeNull();
    const again = await a.open(port);
    expect(again.port).toBe(port);
  });

  it("carries on with IPv4 only when IPv6 cannot be bound", async () => {
    // fd00:dead::1 is on no interface: binding it fails with EADDRNOTAVAIL, as on IPv4-only hosts.
    const a = loopbackBind({ address6: "fd00:dead::1" });
    const r = await a.open(0);
    expect(r.receivers).toHaveLength(1);
    expect(a.families).toEqual({ ipv4: true, ipv6: false });
    // Sending to IPv6 is then counted as an error, not thrown.
    await a.send([Buffer.from("x")], a.parseEndpoint("[::1]:9"));
    expect(a.stats().sendErrors).toBe(1);
    expect(a.stats().lastError).toMatch(/no IPv6 socket/);
  });

  it("can be limited to one family", async () => {
    const a = loopbackBind({ ipv6: false });
    expect((await a.open(0)).receivers).toHaveLength(1);
    expect(() => new UdpBind({ ipv4: false, ipv6: false })).toThrow(/IPv4 or IPv6/);
  });

  it("fails clearly, releasing the IPv4 socket, when the fixed port is taken for IPv6", async () => {
    const blocker = dgram.createSocket({ type: "udp6", ipv6Only: true });
    const port = await new Promise<number>((resolve) => blocker.bind(0, "::1", () => resolve(blocker.address().port)));
    try {
      const a = loopbackBind();
      await expect(a.open(port)).rejects.toThrow(new RegExp(`cannot bind IPv6 UDP socket to \\[::1\\]:${port}.*EADDRINUSE`));
      expect(a.port).toBeNull();
      // The IPv4 half was closed again, so an IPv4-only bind gets the port.
      const b = loopbackBind({ ipv6: false });
      expect((await b.open(port)).port).toBe(port);
    } finally {
      blocker.close();
    }
  });

  it("rejects bad ports and double opens", async () => {
    const a = loopbackBind();
    await expect(a.open(-1)).rejects.toThrow(RangeError);
    await expect(a.open(65536)).rejects.toThrow(/0 to 65535/);
    await expect(a.open(1.5)).rejects.toThrow(RangeError);
    await a.open(0);
    await expect(a.open(0)).rejects.toThrow(/already open/);
    const b = loopbackBind();
    const p1 = b.open(0);
    await expect(b.open(0)).rejects.toThrow(/already open/); // while the first open is in progress
    await p1;
  });
});

describe("UdpBind close", () => {
  it("resolves pending receivers with null, and later ones too", async () => {
    const a = loopbackBind();
    const r = await a.open(0);
    const pending = r.receivers.map((f) => f());
    await a.close();
    expect(await Promise.all(pending)).toEqual([null, null]);
    expect(await r.receivers[0]!()).toBeNull();
  });

  it("is idempotent, frees the port and allows reopening; old receivers stay closed", async () => {
    const a = loopbackBind();
    const first = await a.open(0);
    await a.close();
    await a.close();
    const second = await a.open(first.port);
    expect(second.port).toBe(first.port);
    expect(await first.receivers[0]!()).toBeNull();
    const b = loopbackBind();
    await b.open(0);
    await b.send([Buffer.from("hi")], b.parseEndpoint(`127.0.0.1:${second.port}`));
    expect((await collect(second.receivers[0]!, 1)).map(text)).toEqual(["hi"]);
  });

  it("discards datagrams queued before close", async () => {
    const a = loopbackBind();
    const b = loopbackBind();
    const ra = await a.open(0);
    await b.open(0);
    await b.send(batchOf("q", 3), b.parseEndpoint(`127.0.0.1:${ra.port}`));
    await waitFor(() => a.stats().received === 3, { what: "3 datagrams queued" });
    await a.close();
    expect(await ra.receivers[0]!()).toBeNull();
    expect(a.stats().received).toBe(3); // counters survive close
  });

  it("close on a never-opened bind is harmless", async () => {
    await expect(new UdpBind().close()).resolves.toBeUndefined();
  });
});

describe("UdpBind send", () => {
  it("rejects on a closed bind with BindClosedError", async () => {
    const a = new UdpBind();
    await expect(a.send([Buffer.from("x")], a.parseEndpoint("127.0.0.1:9"))).rejects.toBeInstanceOf(BindClosedError);
  });

  it("rejects batches larger than batchSize() and foreign endpoints", async () => {
    const a = loopbackBind({ batchSize: 2 });
    await a.open(0);
    const to = a.parseEndpoint("127.0.0.1:9");
    await expect(a.send(batchOf("x", 3), to)).rejects.toThrow(/exceed the batch size 2/);
    const foreign: Endpoint = {
      bind: a,
      key: "ice:1",
      dstToString: () => "ice",
      dstToBytes: () => new Uint8Array(0),
      dstIP: () => "",
    };
    await expect(a.send([Buffer.from("x")], foreign)).rejects.toThrow(TypeError);
    await expect(a.send([], to)).resolves.toBeUndefined();
  });

  it("counts kernel errors instead of throwing", async () => {
    const a = loopbackBind();
    await a.open(0);
    // Larger than any UDP datagram can be: refused with EMSGSIZE.
    await a.send([new Uint8Array(70_000), Buffer.from("ok")], a.parseEndpoint("127.0.0.1:9"));
    const s = a.stats();
    expect(s.sendErrors).toBe(1);
    expect(s.sent).toBe(1);
    expect(s.lastError).toMatch(/EMSGSIZE|too long/i);
  });
});

describe("UdpBind back-pressure", () => {
  it("keeps at most queueCapacity datagrams per receiver and counts the rest as dropped", async () => {
    const cap = 8;
    const a = loopbackBind({ queueCapacity: cap, batchSize: 64 });
    const b = loopbackBind({ batchSize: 64 });
    const ra = await a.open(0);
    await b.open(0);
    const to = b.parseEndpoint(`127.0.0.1:${ra.port}`);
    // Nobody pulls from `a` while 50 datagrams arrive.
    await b.send(batchOf("flood", 50), to);
    await waitFor(() => a.stats().received + a.stats().dropped === 50, { what: "all 50 datagrams to arrive" });
    expect(a.stats()).toMatchObject({ received: cap, dropped: 50 - cap });
    const first = await ra.receivers[0]!();
    expect(first).toHaveLength(cap);
    // The oldest were kept: a full queue refuses newcomers.
    expect(first!.map(text)).toEqual(Array.from({ length: cap }, (_, i) => `flood-${i}`));
    // Once drained, datagrams are accepted again.
    await b.send([Buffer.from("after")], to);
    expect((await collect(ra.receivers[0]!, 1)).map(text)).toEqual(["after"]);
  });
});

describe("UdpBind setMark", () => {
  it("records a valid mark and rejects invalid ones", async () => {
    const a = new UdpBind();
    await a.setMark(0x1234);
    expect(a.mark).toBe(0x1234);
    await expect(a.setMark(-1)).rejects.toThrow(RangeError);
    await expect(a.setMark(2 ** 32)).rejects.toThrow(RangeError);
    expect(a.mark).toBe(0x1234);
  });
});
