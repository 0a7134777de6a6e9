import { afterEach, describe, expect, it } from "vitest";
import { createNodeBackend } from "../../src/crypto/index.js";
import { keyToBase64 } from "../../src/crypto/keys.js";
import { IceManager } from "../../src/ice/manager.js";
import { SealedChannel } from "../../src/signaling/channel.js";
import { MemoryHub as SignalingHub } from "../../src/signaling/memory.js";
import { waitFor } from "../helpers/wait.js";
import { keyPair, LOOPBACK } from "./helpers.js";
import { MemoryHub } from "./memory-channel.js";

const toClose: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((x) => x.close()));
});

function manager(hub: MemoryHub, key: Uint8Array, opts: { lazy?: boolean } = {}): IceManager {
  const m = new IceManager({ ...LOOPBACK, publicKey: key, channel: hub.channel(key), ...opts });
  toClose.push(m);
  return m;
}

const connected = (m: IceManager, peer: Uint8Array) => m.statusOf(peer)?.state === "connected";

describe("IceManager", () => {
  it("connects configured peers and delivers datagrams with the sender's key", async () => {
    const [ka, kb] = keyPair();
    const hub = new MemoryHub();
    const ma = manager(hub, ka);
    const mb = manager(hub, kb);
    ma.addPeer(kb);
    mb.addPeer(keyToBase64(ka)); // base64 works as well
    const gotB: Array<[string, number[]]> = [];
    const gotA: Array<[string, number[]]> = [];
    mb.onData((peer, d) => gotB.push([peer, [...d]]));
    ma.onData((peer, d) => gotA.push([peer, [...d]]));
    const states: string[] = [];
    ma.onStateChange((peer, s) => states.push(`${peer.slice(0, 4)}:${s}`));
    ma.start();
    mb.start();
    await waitFor(() => connected(ma, kb) && connected(mb, ka), { what: "managers to connect", timeoutMs: 10_000 });
    expect(states).toContain(`${keyToBase64(kb).slice(0, 4)}:connected`);

    expect(ma.send(kb, Uint8Array.of(1, 2))).toBe(true);
    expect(mb.send(ka, Uint8Array.of(3))).toBe(true);
    await waitFor(() => gotA.length === 1 && gotB.length === 1, { what: "datagrams", timeoutMs: 3000 });
    expect(gotB).toEqual([[keyToBase64(ka), [1, 2]]]);
    expect(gotA).toEqual([[keyToBase64(kb), [3]]]);

    const st = ma.status();
    expect(st).toHaveLength(1);
    expect(st[0]).toMatchObject({ peer: keyToBase64(kb), role: "controlling", state: "connected" });
    expect(ma.selectedRemote(kb)).toMatchObject({ address: "127.0.0.1", type: "host" });
    expect(mb.statusOf(ka)?.role).toBe("controlled");
  });

  it("routes each peer's messages to its own agent", async () => {
    const hub = new MemoryHub();
    const [k1, k2] = keyPair();
    const [k3] = keyPair();
    const m1 = manager(hub, k1);
    const m2 = manager(hub, k2);
    const m3 = manager(hub, k3);
    m1.addPeer(k2);
    m1.addPeer(k3);
    m2.addPeer(k1);
    m3.addPeer(k1);
    const got: string[] = [];
    m1.onData((peer, d) => got.push(`${peer}:${d[0]}`));
    for (const m of [m1, m2, m3]) m.start();
    await waitFor(() => connected(m1, k2) && connected(m1, k3) && connected(m2, k1) && connected(m3, k1), { what: "three managers to connect", timeoutMs: 10_000 });
    m2.send(k1, Uint8Array.of(2));
    m3.send(k1, Uint8Array.of(3));
    await waitFor(() => got.length === 2, { what: "datagrams", timeoutMs: 3000 });
    expect(got.sort()).toEqual([`${keyToBase64(k2)}:2`, `${keyToBase64(k3)}:3`].sort());
    expect(m1.status().map((s) => s.state)).toEqual(["connected", "connected"]);
  });

  it("lazy: an agent starts on the first message from a configured peer", async () => {
    const [ka, kb] = keyPair();
    const hub = new MemoryHub();
    const ma = manager(hub, ka);
    const mb = manager(hub, kb, { lazy: true });
    ma.addPeer(kb);
    mb.addPeer(ka);
    mb.start();
    expect(mb.agent(ka)).toBeUndefined();
    expect(mb.statusOf(ka)).toMatchObject({ state: "new", role: "controlled" });
    ma.start();
    await waitFor(() => connected(ma, kb) && connected(mb, ka), { what: "lazy agent to connect", timeoutMs: 10_000 });
    expect(mb.agent(ka)).toBeDefined();
  });

  it("drops datagrams to unknown peers and forgets removed ones", async () => {
    const [ka, kb] = keyPair();
    const [kc] = keyPair();
    const hub = new MemoryHub();
    const ma = manager(hub, ka);
    const mb = manager(hub, kb);
    ma.addPeer(kb);
    mb.addPeer(ka);
    expect(ma.send(kb, Uint8Array.of(1))).toBe(false); // not started
    ma.start();
    mb.start();
    expect(ma.send(kc, Uint8Array.of(1))).toBe(false);
    expect(ma.stats().unknownPeerDrops).toBe(2);
    expect(() => ma.addPeer(ka)).toThrow(/own public key/);
    expect(() => ma.addPeer("not a key")).toThrow();
    await waitFor(() => connected(ma, kb), { what: "connect", timeoutMs: 10_000 });
    await ma.removePeer(kb);
    expect(ma.peers()).toEqual([]);
    expect(ma.statusOf(kb)).toBeNull();
    expect(ma.send(kb, Uint8Array.of(1))).toBe(false);
    // Messages from a removed peer are not routed (the channel no longer accepts them either).
    await new Promise((r) => setTimeout(r, 200));
    expect(ma.agent(kb)).toBeUndefined();
  });

  it("stop closes the agents and start brings the peers back", async () => {
    const [ka, kb] = keyPair();
    const hub = new MemoryHub();
    const ma = manager(hub, ka);
    const mb = manager(hub, kb);
    ma.addPeer(kb);
    mb.addPeer(ka);
    ma.start();
    mb.start();
    await waitFor(() => connected(ma, kb) && connected(mb, ka), { what: "connect", timeoutMs: 10_000 });
    await ma.stop();
    expect(ma.started).toBe(false);
    expect(ma.agent(kb)).toBeUndefined();
    ma.start();
    await waitFor(() => connected(ma, kb) && connected(mb, ka) && mb.statusOf(ka)!.restarts > 0, {
      what: "reconnect after stop/start",
      timeoutMs: 15_000,
    });
    const got: number[] = [];
    mb.onData((_p, d) => got.push(d[0]!));
    ma.send(kb, Uint8Array.of(42));
    await waitFor(() => got.length === 1, { what: "datagram", timeoutMs: 3000 });
  }, 25_000);

  it("works over the sealed signaling channel", async () => {
    const backend = createNodeBackend();
    const hub = new SignalingHub();
    const privA = backend.generatePrivateKey();
    const privB = backend.generatePrivateKey();
    const pubA = backend.publicKey(privA);
    const pubB = backend.publicKey(privB);
    const ca = new SealedChannel({ privateKey: privA, transport: hub.transport() });
    const cb = new SealedChannel({ privateKey: privB, transport: hub.transport() });
    toClose.push(ca, cb);
    await Promise.all([ca.start(), cb.start()]);
    const ma = new IceManager({ ...LOOPBACK, publicKey: pubA, channel: ca });
    const mb = new IceManager({ ...LOOPBACK, publicKey: pubB, channel: cb });
    toClose.unshift(ma, mb);
    ma.addPeer(pubB);
    mb.addPeer(pubA);
    ma.start();
    mb.start();
    await waitFor(() => connected(ma, pubB) && connected(mb, pubA), { what: "connect over sealed signaling", timeoutMs: 10_000 });
    const got: string[] = [];
    mb.onData((p, d) => got.push(`${p}:${d[0]}`));
    ma.send(pubB, Uint8Array.of(9));
    await waitFor(() => got.length === 1, { what: "datagram", timeoutMs: 3000 });
    expect(got).toEqual([`${keyToBase64(pubA)}:9`]);
  });
});
