import { afterEach, describe, expect, it, vi } from "vitest";
import type { SelectedPair } from "../../src/ice/agent.js";
import type { IceManager } from "../../src/ice/manager.js";
import type { WireGuardControl } from "../../src/kernel/control.js";
import { IceBeside } from "../../src/kernel/ice-beside.js";
import { RawPacketSocket } from "../../src/kernel/raw-socket.js";
import { silentLogger } from "../../src/log/logger.js";
import type { UapiDeviceState, UapiSetRequest } from "../../src/uapi/types.js";
import { fakeAddon } from "./fake-kernel-addon.js";

const PEER = Buffer.alloc(32, 7).toString("base64");
const direct: SelectedPair = { local: { type: "host", address: "10.0.0.1", port: 51820 }, remote: { type: "host", address: "10.0.0.2", port: 51820 } };
const relayed: SelectedPair = { local: { type: "relay", address: "10.0.0.254", port: 49160 }, remote: { type: "host", address: "10.0.0.2", port: 51820 } };

/** The manager's side IceBeside uses, in memory: one peer whose pair the test sets. */
function fakeManager(): { manager: IceManager; setPair(p: SelectedPair | null): void; activity: { peer: string; sent: boolean; received: boolean }[]; pathChanged(): void } {
  let pair: SelectedPair | null = null;
  const activity: { peer: string; sent: boolean; received: boolean }[] = [];
  const pathListeners = new Set<() => void>();
  const manager = {
    peers: () => [PEER],
    status: () => [{ peer: PEER, state: pair === null ? "checking" : "connected", selectedPair: pair }],
    onData: () => () => undefined,
    onStateChange: () => () => undefined,
    onPathChange: (l: () => void) => {
      pathListeners.add(l);
      return () => pathListeners.delete(l);
    },
    noteActivity: (peer: string, sent: boolean, received: boolean) => void activity.push({ peer, sent, received }),
    useSocket: () => undefined,
    send: () => true,
    start: () => undefined,
  } as unknown as IceManager;
  return { manager, setPair: (p) => (pair = p), activity, pathChanged: () => pathListeners.forEach((l) => l()) };
}

/** A device whose per-peer counters the test moves; endpoint changes are recorded. */
function fakeDevice(): { control: WireGuardControl; bytes: { tx: number; rx: number }; endpoints: string[]; gets: number } {
  const dev = {
    bytes: { tx: 0, rx: 0 },
    endpoints: [] as string[],
    gets: 0,
    control: undefined as unknown as WireGuardControl,
  };
  dev.control = {
    kind: "kernel",
    ifname: "wgt",
    get: async (): Promise<UapiDeviceState> => {
      dev.gets++;
      return {
        listenPort: 51820,
        fwmark: 0,
        peers: [{ publicKey: Buffer.from(PEER, "base64"), persistentKeepalive: 0, allowedIps: [], lastHandshakeMs: 0, txBytes: BigInt(dev.bytes.tx), rxBytes: BigInt(dev.bytes.rx), protocolVersion: 1 }],
      } as UapiDeviceState;
    },
    set: async (r: UapiSetRequest) => {
      for (const p of r.peers) if (p.endpoint !== undefined) dev.endpoints.push(String(p.endpoint));
    },
    close: () => undefined,
  };
  return dev;
}

describe("IceBeside", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("follows relay -> direct -> relay, and reports a kernel-carried peer that sends without hearing back", async () => {
    // Only the clock is faked: the counter looks are timed with Date.now.
    vi.useFakeTimers({ toFake: ["Date"] });
    const m = fakeManager();
    const dev = fakeDevice();
    const f = fakeAddon();
    const beside = await IceBeside.start({ control: dev.control, manager: m.manager, mode: "raw", log: silentLogger, checkIntervalMs: 60_000, openRaw: (port) => new RawPacketSocket(port, f.addon) });
    try {
      await beside.sync();
      expect(beside.status()[0]!.mode).toBeNull();

      // A relay pair first: the proxy carries it (raw cannot), the device's endpoint is the proxy's socket.
      m.setPair(relayed);
      await beside.sync();
      expect(beside.status()[0]).toMatchObject({ mode: "proxy" });
      expect(dev.endpoints.at(-1)).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(beside.proxy.has(PEER)).toBe(true);
      // Counters are not read for proxied peers (ICE sees their packets itself).
      const getsBefore = dev.gets;
      dev.bytes.tx += 100;
      await beside.sync();
      expect(dev.gets).toBe(getsBefore);

      // The direct pair appears: raw, the device's endpoint is the peer's device port, the proxy socket goes.
      m.setPair(direct);
      m.pathChanged();
      await beside.sync();
      expect(beside.status()[0]).toMatchObject({ mode: "raw", endpoint: "10.0.0.2:51820" });
      expect(dev.endpoints.at(-1)).toBe("10.0.0.2:51820");
      expect(beside.proxy.has(PEER)).toBe(false);

      // Traffic both ways: nothing reported. Sent with nothing back: reported as carried traffic.
      const pass = async (tx: number, rx: number): Promise<void> => {
        dev.bytes.tx += tx;
        dev.bytes.rx += rx;
        vi.setSystemTime(Date.now() + 800);
        await beside.sync();
      };
      await pass(100, 100);
      await pass(100, 100);
      expect(m.activity).toEqual([]);
      await pass(0, 0);
      expect(m.activity).toEqual([]);
      // One look with sends only (WireGuard's keepalive after the last packet received, the end
      // of a flow) is not enough; sends without an answer over two looks and QUIET_MS are.
      await pass(32, 0);
      await pass(0, 0);
      expect(m.activity).toEqual([]);
      await pass(148, 0);
      expect(m.activity).toEqual([]);
      await pass(148, 0);
      expect(m.activity).toEqual([{ peer: PEER, sent: true, received: false }]);
      await pass(96, 96);
      expect(m.activity).toHaveLength(1);

      // The agent fails over to its relay lane: back to the proxy, no more counter reads.
      m.setPair(relayed);
      await beside.sync();
      expect(beside.status()[0]).toMatchObject({ mode: "proxy" });
      expect(dev.endpoints.at(-1)).toMatch(/^127\.0\.0\.1:\d+$/);
      const gets = dev.gets;
      await pass(148, 0);
      await pass(148, 0);
      expect(dev.gets).toBe(gets);
      expect(m.activity).toHaveLength(1);
      expect(beside.syncErrors).toBe(0);
    } finally {
      await beside.close();
    }
    expect(beside.proxy.has(PEER)).toBe(false);
    expect(f.readable.size).toBe(0);
  });
});
