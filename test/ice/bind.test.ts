/** IceBind: the device's transport over ICE, driven directly as a device would. */
import { afterEach, describe, expect, it } from "vitest";
import { EndpointParseError } from "../../src/bind/addr-port.js";
import type { Received } from "../../src/bind/bind.js";
import { BindClosedError } from "../../src/bind/errors.js";
import { IceBind } from "../../src/bind/ice.js";
import { IceEndpoint } from "../../src/bind/ice-endpoint.js";
import { UdpBind } from "../../src/bind/udp.js";
import { keyToBase64 } from "../../src/crypto/keys.js";
import { IceManager } from "../../src/ice/manager.js";
import { waitFor } from "../helpers/wait.js";
import { keyPair, LOOPBACK } from "./helpers.js";
import { MemoryHub } from "./memory-channel.js";

const binds: IceBind[] = [];
const managers: IceManager[] = [];
afterEach(async () => {
  await Promise.all(binds.splice(0).map((b) => b.close()));
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

function setup(opts: { batchSize?: number } = {}) {
  const [ka, kb] = keyPair();
  const hub = new MemoryHub();
  const ma = new IceManager({ ...LOOPBACK, publicKey: ka, channel: hub.channel(ka) });
  const mb = new IceManager({ ...LOOPBACK, publicKey: kb, channel: hub.channel(kb) });
  managers.push(ma, mb);
  ma.addPeer(kb);
  mb.addPeer(ka);
  const ba = new IceBind(ma, opts);
  const bb = new IceBind(mb, opts);
  binds.push(ba, bb);
  return { ka, kb, ma, mb, ba, bb };
}

/** Pulls batches until `n` datagrams have come (or time runs out). */
async function receiveN(recv: () => Promise<Received[] | null>, n: number, timeoutMs = 5000): Promise<Received[]> {
  const out: Received[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < deadline) {
    const batch = await Promise.race([recv(), new Promise<null>((r) => setTimeout(() => r(null), Math.max(1, deadline - Date.now())))]);
    if (batch === null) break;
    out.push(...batch);
  }
  return out;
}

describe("IceBind", () => {
  it("opens, sends a batch to a peer endpoint and receives it with the sender's endpoint", async () => {
    const { ka, kb, ma, mb, ba, bb } = setup({ batchSize: 16 });
    const ra = await ba.open(0);
    const rb = await bb.open(51820);
    expect(ra.receivers).toHaveLength(1);
    expect(rb.port).toBe(51820); // not used by ICE, reported back as given
    expect(ba.kind).toBe("ice");
    expect(ba.batchSize()).toBe(16);

    const toB = ba.parseEndpoint(`ice:${keyToBase64(kb)}`);
    expect(toB).toBeInstanceOf(IceEndpoint);
    expect(toB.key).toBe(`ice:${keyToBase64(kb)}`);
    expect(toB.dstToString()).toBe(`ice:${keyToBase64(kb)}`); // no path yet
    expect(toB.dstIP()).toBe("");

    // Before a path exists: held (a first handshake must not be lost) and sent once one is selected.
    await ba.send([Uint8Array.of(0xee)], toB);
    expect(ba.stats().sendDropped).toBe(0);
    const early = await receiveN(rb.receivers[0]!, 1);
    expect(early.map((r) => [...r.data])).toEqual([[0xee]]);
    expect(ma.statusOf(kb)?.txQueued).toBe(1);

    await waitFor(() => ma.statusOf(kb)?.state === "connected" && mb.statusOf(ka)?.state === "connected", { what: "ICE to connect", timeoutMs: 10_000 });

    const batch = Array.from({ length: 16 }, (_, i) => Uint8Array.of(i, 0xaa));
    await ba.send(batch, toB);
    expect(ba.stats().sent).toBe(17);
    const got = await receiveN(rb.receivers[0]!, 16);
    expect(got.map((r) => r.data[0])).toEqual(batch.map((b) => b[0]));
    const from = got[0]!.endpoint;
    expect(from).toBeInstanceOf(IceEndpoint);
    expect(from.key).toBe(`ice:${keyToBase64(ka)}`);
    expect(from.bind).toBe(bb);
    // The same endpoint object for every datagram of a peer, and for parseEndpoint of its key.
    expect(got.every((r) => r.endpoint === from)).toBe(true);
    expect(bb.parseEndpoint(`ice:${keyToBase64(ka)}`)).toBe(from);
    // Shown as the selected remote candidate; bytes are the peer's key (stable across paths).
    const remote = mb.selectedRemote(ka)!;
    expect(from.dstToString()).toBe(`127.0.0.1:${remote.port}`);
    expect(from.dstIP()).toBe("127.0.0.1");
    expect([...from.dstToBytes()]).toEqual([...ka]);

    // And back, to the endpoint a datagram came from.
    await bb.send([Uint8Array.of(7)], from);
    const back = await receiveN(ra.receivers[0]!, 1);
    expect(back.map((r) => [...r.data])).toEqual([[7]]);
    expect(back[0]!.endpoint.key).toBe(`ice:${keyToBase64(kb)}`);
    expect(bb.stats().received).toBe(17);
  });

  it("refuses bad input with clear errors", async () => {
    const { ba } = setup({ batchSize: 4 });
    expect(() => ba.parseEndpoint("192.0.2.1:51820")).toThrow(EndpointParseError);
    expect(() => ba.parseEndpoint("ice:")).toThrow(/invalid ICE endpoint/);
    expect(() => ba.parseEndpoint("ice:not-base64")).toThrow(EndpointParseError);
    const [k] = keyPair();
    const ep = ba.parseEndpoint(` ice:${keyToBase64(k)} `);
    await expect(ba.send([Uint8Array.of(1)], ep)).rejects.toBeInstanceOf(BindClosedError);
    await ba.open(0);
    await expect(ba.send(Array.from({ length: 5 }, () => Uint8Array.of(1)), ep)).rejects.toThrow(/batch size/);
    const udp = new UdpBind();
    await expect(ba.send([Uint8Array.of(1)], udp.parseEndpoint("127.0.0.1:9"))).rejects.toThrow(/IceEndpoint/);
    // A key that is not a configured peer: dropped, not thrown.
    await ba.send([Uint8Array.of(1)], ep);
    expect(ba.stats().sendDropped).toBe(1);
    await expect(ba.open(0)).rejects.toThrow(/already open/);
    await expect(ba.setMark(-1)).rejects.toThrow(RangeError);
    await ba.setMark(51820);
    expect(ba.mark).toBe(51820);
  });

  it("close ends the receivers; open again reconnects", async () => {
    const { ka, kb, ma, mb, ba, bb } = setup();
    const r1 = await ba.open(0);
    const rb = await bb.open(0);
    await waitFor(() => ma.statusOf(kb)?.state === "connected" && mb.statusOf(ka)?.state === "connected", { what: "connect", timeoutMs: 10_000 });
    const pending = r1.receivers[0]!();
    await ba.close();
    expect(await pending).toBeNull();
    expect(await r1.receivers[0]!()).toBeNull();
    expect(ma.started).toBe(false);
    await ba.close(); // idempotent

    const r2 = await ba.open(0);
    const toA = bb.parseEndpoint(`ice:${keyToBase64(ka)}`);
    await waitFor(() => ma.statusOf(kb)?.state === "connected" && mb.statusOf(ka)?.state === "connected" && mb.statusOf(ka)!.restarts > 0, {
      what: "reconnect after reopen",
      timeoutMs: 15_000,
    });
    await bb.send([Uint8Array.of(3)], toA);
    const got = await receiveN(r2.receivers[0]!, 1);
    expect(got.map((r) => r.data[0])).toEqual([3]);
    expect(rb.receivers).toHaveLength(1);
  }, 25_000);
});
