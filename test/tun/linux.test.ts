// The Linux TUN against the real kernel, inside a network namespace of its own. Needs root and
// /dev/net/tun (CI has both); skipped with the reason otherwise.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNative } from "../../src/native/load.js";
import { createLinuxTun, type LinuxTun } from "../../src/tun/linux.js";
import {
  addAddress,
  addRoute,
  deleteLink,
  linkExists,
  runIp,
  setLinkDown,
  setLinkUp,
  setMtu,
} from "../../src/tun/linux-ifconfig.js";
import { ECHO_REPLY, ECHO_REQUEST, buildEcho, parseEcho, replyTo } from "./support/icmp.js";
import { createNetns, deleteNetns, netnsName, realTunSkipReason, runInNetns } from "./support/netns.js";

const skipReason = realTunSkipReason();
const NS = netnsName("tun");
const title = skipReason === null ? "LinuxTun in a network namespace" : `LinuxTun in a network namespace (skipped: ${skipReason})`;

const waitFor = <T>(what: string, promise: Promise<T>, ms = 5000): Promise<T> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
  ]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const nextEvent = (tun: LinuxTun, name: string): Promise<unknown[]> =>
  waitFor(`"${name}" event`, new Promise((resolve) => tun.events.once(name, (...args: unknown[]) => resolve(args))));

/**
 * Reads with a time limit without abandoning a read: a read that lost the race stays pending
 * and would take the next batch, so it is kept for the next call.
 */
class TimedReader {
  #pending: Promise<Uint8Array[] | null> | null = null;
  constructor(readonly tun: LinuxTun) {}

  async next(ms: number): Promise<Uint8Array[] | null | "timeout"> {
    this.#pending ??= this.tun.read();
    const result = await Promise.race([
      this.#pending,
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms)),
    ]);
    if (result !== "timeout") this.#pending = null;
    return result;
  }
}

/** Reads until `count` echo replies with this id arrived; other packets are ignored. */
async function collectReplies(reader: TimedReader, id: number, count: number, seen: Set<number>): Promise<void> {
  while (seen.size < count) {
    const batch = await reader.next(5000);
    if (batch === "timeout") throw new Error(`timed out waiting for echo replies (${seen.size} of ${count})`);
    if (batch === null) throw new Error("TUN closed while collecting replies");
    for (const packet of batch) {
      const echo = parseEcho(packet);
      if (echo !== null && echo.type === ECHO_REPLY && echo.id === id) {
        seen.add(new DataView(echo.payload.buffer, echo.payload.byteOffset).getUint32(0));
      }
    }
  }
}

function counterPayload(n: number): Uint8Array {
  const payload = new Uint8Array(56);
  new DataView(payload.buffer).setUint32(0, n);
  return payload;
}

/** Writes `total` echo requests to the interface's own address, at most `window` unanswered. */
async function echoRoundTrips(
  reader: TimedReader,
  from: string,
  to: string,
  id: number,
  total: number,
  window = 256,
): Promise<void> {
  const tun = reader.tun;
  const seen = new Set<number>();
  let sent = 0;
  while (sent < total) {
    const burst: Uint8Array[] = [];
    while (burst.length < 64 && sent < total && sent - seen.size < window) {
      burst.push(buildEcho(ECHO_REQUEST, from, to, id, sent, counterPayload(sent)));
      sent++;
    }
    await tun.write(burst);
    await collectReplies(reader, id, Math.max(seen.size + 1, sent - window / 2), seen);
  }
  await collectReplies(reader, id, total, seen);
  expect(seen.size).toBe(total);
}

describe.skipIf(skipReason !== null)(title, () => {
  beforeAll(async () => {
    await createNetns(NS);
  });
  afterAll(async () => {
    await deleteNetns(NS);
  });

  it("creates the interface from a template, inside the namespace, and deletes it on close", async () => {
    const tun = await createLinuxTun("tswgt%d", { netns: NS, mtu: 1400 });
    try {
      expect(tun.name).toMatch(/^tswgt\d+$/);
      expect(tun.mtu()).toBe(1400);
      expect(tun.batchSize()).toBe(128);
      expect(await linkExists(tun.name, { netns: NS })).toBe(true);
      expect(await linkExists(tun.name)).toBe(false);
    } finally {
      await tun.close();
      await tun.close();
    }
    expect(await linkExists(tun.name, { netns: NS })).toBe(false);
  });

  it("carries ping: requests are read from the TUN, crafted replies written back reach ping", async () => {
    const tun = await createLinuxTun("tswgt-ping", { netns: NS });
    try {
      await addAddress(tun.name, "10.77.1.1/24", { netns: NS });
      await setLinkUp(tun.name, { netns: NS });
      let requests = 0;
      const responder = (async () => {
        for (;;) {
          const batch = await tun.read();
          if (batch === null) return;
          for (const packet of batch) {
            const echo = parseEcho(packet);
            if (echo?.type !== ECHO_REQUEST || echo.dst !== "10.77.1.2") continue;
            requests++;
            await tun.write([replyTo(echo)]);
          }
        }
      })();
      const ping = await runInNetns(NS, "ping", ["-c", "3", "-i", "0.2", "-W", "2", "10.77.1.2"]);
      expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
      expect(ping.code).toBe(0);
      expect(requests).toBe(3);
      await tun.close();
      await responder;
    } finally {
      await tun.close();
    }
  });

  it("uses a virtio-net header with segmentation offloads by default, and plain packets without", async () => {
    const on = await createLinuxTun("tswgt-off1", { netns: NS });
    const off = await createLinuxTun("tswgt-off0", { netns: NS, offload: false });
    try {
      const o = on.offloads();
      expect(o.vnetHdr).toBe(true);
      expect(o.flags & 0x07).toBe(0x07); // checksum, TSO4, TSO6
      expect(off.offloads()).toEqual({ vnetHdr: false, flags: 0 });
      // The plain TUN still carries packets: a crafted echo reply reaches ping.
      await addAddress(off.name, "10.77.9.1/24", { netns: NS });
      await setLinkUp(off.name, { netns: NS });
      const responder = (async () => {
        for (;;) {
          const batch = await off.read();
          if (batch === null) return;
          for (const packet of batch) {
            const echo = parseEcho(packet);
            if (echo?.type === ECHO_REQUEST && echo.dst === "10.77.9.2") await off.write([replyTo(echo)]);
          }
        }
      })();
      const ping = await runInNetns(NS, "ping", ["-c", "2", "-i", "0.2", "-W", "2", "10.77.9.2"]);
      expect(ping.stdout).toMatch(/2 packets transmitted, 2 received/);
      await off.close();
      await responder;
    } finally {
      await on.close();
      await off.close();
    }
  });

  it("reports up, down and MTU changes made with ip, and MTU changes made through setMtu", async () => {
    const tun = await createLinuxTun("tswgt-ev", { netns: NS, pollIntervalMs: 50 });
    try {
      await nextEvent(tun, "down"); // initial state: created down
      const up = nextEvent(tun, "up");
      await setLinkUp(tun.name, { netns: NS });
      await up;
      expect(tun.isUp()).toBe(true);

      const polled = nextEvent(tun, "mtu");
      await setMtu(tun.name, 1300, { netns: NS });
      expect(await polled).toEqual([1300]);

      const direct = nextEvent(tun, "mtu");
      tun.setMtu(1280);
      expect(await direct).toEqual([1280]);
      const shown = await runInNetns(NS, "ip", ["link", "show", "dev", tun.name]);
      expect(shown.stdout).toMatch(/mtu 1280/);
      expect(() => tun.setMtu(10)).toThrow(/invalid MTU 10/);

      const down = nextEvent(tun, "down");
      await setLinkDown(tun.name, { netns: NS });
      await down;
      expect(tun.isUp()).toBe(false);
    } finally {
      await tun.close();
    }
  });

  it("moves a burst of echo round trips without loss and without memory growth", async () => {
    const tun = await createLinuxTun("tswgt-burst", { netns: NS });
    try {
      await addAddress(tun.name, "10.77.2.1/24", { netns: NS });
      await setLinkUp(tun.name, { netns: NS });
      const reader = new TimedReader(tun);
      // The first rounds let the heap settle; a leak shows as growth between the later ones.
      const rss: number[] = [];
      for (let round = 1; round <= 4; round++) {
        await echoRoundTrips(reader, "10.77.2.2", "10.77.2.1", round, round === 1 ? 3000 : 10000);
        rss.push(process.memoryUsage().rss);
      }
      expect(rss[3] - rss[1]).toBeLessThan(16 * 1024 * 1024);
      const stats = tun.stats();
      expect(stats.packetsWritten).toBe(33000);
      expect(stats.queuedBatches).toBe(0);
      expect(stats.writeDropped).toBe(0);
      expect(stats.packetsRead).toBeGreaterThanOrEqual(33000);
      expect(stats.batchesRead).toBeLessThan(stats.packetsRead);
    } finally {
      await tun.close();
    }
  });

  it("stops reading when nobody takes the batches, keeping at most maxPendingBatches here", async () => {
    const tun = await createLinuxTun("tswgt-bp", { netns: NS, batchSize: 16, maxPendingBatches: 2 });
    try {
      await addAddress(tun.name, "10.77.3.1/24", { netns: NS });
      await setLinkUp(tun.name, { netns: NS });
      const requests = Array.from({ length: 1000 }, (_, i) =>
        buildEcho(ECHO_REQUEST, "10.77.3.2", "10.77.3.1", 3, i, counterPayload(i)),
      );
      for (let i = 0; i < requests.length; i += 100) await tun.write(requests.slice(i, i + 100));
      const deadline = Date.now() + 5000;
      while (tun.stats().pendingBatches < 2 && Date.now() < deadline) await sleep(20);
      await sleep(200); // time in which a reader that ignores back-pressure would take more

      const stalled = tun.stats();
      expect(stalled.pendingBatches).toBe(2);
      expect(stalled.queuedBatches).toBeLessThanOrEqual(2);
      expect(stalled.packetsRead).toBeLessThanOrEqual(32);
      expect(stalled.readerPauses).toBeGreaterThanOrEqual(1);

      // Reading resumes; what the kernel could not queue meanwhile is gone (it counts it).
      const reader = new TimedReader(tun);
      let replies = 0;
      for (;;) {
        const batch = await reader.next(300);
        if (batch === "timeout") break;
        if (batch === null) throw new Error("TUN ended unexpectedly");
        expect(batch.length).toBeLessThanOrEqual(16);
        replies += batch.filter((p) => parseEcho(p)?.type === ECHO_REPLY).length;
      }
      expect(replies).toBeGreaterThan(32);
      expect(replies).toBeLessThan(1000);

      expect(await reader.next(0)).toBe("timeout");
      await echoRoundTrips(reader, "10.77.3.2", "10.77.3.1", 4, 200, 16);
    } finally {
      await tun.close();
    }
  });

  it("sets up addresses and routes with ip, as wg-quick does", async () => {
    const tun = await createLinuxTun("tswgt-cfg", { netns: NS });
    try {
      const opts = { netns: NS };
      await addAddress(tun.name, "10.77.5.1/24", opts);
      await addAddress(tun.name, "fd77::1/64", opts);
      await setMtu(tun.name, 1420, opts);
      await setLinkUp(tun.name, opts);
      await addRoute(tun.name, "10.78.0.0/16", opts);
      await addRoute(tun.name, "fd78::/48", opts);
      await addRoute(tun.name, "0.0.0.0/0", { ...opts, table: 51820 });
      const addresses = await runIp(["address", "show", "dev", tun.name], opts);
      expect(addresses).toMatch(/inet 10\.77\.5\.1\/24/);
      expect(addresses).toMatch(/inet6 fd77::1\/64/);
      expect(addresses).toMatch(/mtu 1420/);
      expect(await runIp(["-4", "route", "show", "dev", tun.name], opts)).toMatch(/10\.78\.0\.0\/16/);
      expect(await runIp(["-6", "route", "show", "dev", tun.name], opts)).toMatch(/fd78::\/48/);
      expect(await runIp(["-4", "route", "show", "table", "51820"], opts)).toMatch(/default dev tswgt-cfg/);
      await expect(addRoute(tun.name, "10.78.0.0/16", opts)).rejects.toThrow(
        /^ip -n tswgt-tun-\d+ -4 route add 10\.78\.0\.0\/16 dev tswgt-cfg: .*File exists/,
      );
    } finally {
      await tun.close();
    }
    expect(await linkExists("tswgt-cfg", { netns: NS })).toBe(false);
  });

  it("resolves a pending read with null on close, and every later read too", async () => {
    const tun = await createLinuxTun("tswgt-close", { netns: NS });
    const pending = tun.read();
    await tun.close();
    await expect(waitFor("the pending read", pending)).resolves.toBeNull();
    await expect(tun.read()).resolves.toBeNull();
    await tun.write([buildEcho(ECHO_REQUEST, "10.0.0.1", "10.0.0.2", 1, 1, new Uint8Array(8))]);
    expect(tun.stats().writeDropped).toBe(1);
  });

  it("ends reads with null and emits down when the interface is deleted under it", async () => {
    // Polling cannot see a deleted interface (its ioctls fail and are ignored), so "down"
    // here comes from the reader thread ending.
    const tun = await createLinuxTun("tswgt-del", { netns: NS, pollIntervalMs: 50 });
    try {
      await setLinkUp(tun.name, { netns: NS });
      await nextEvent(tun, "up");
      const down = nextEvent(tun, "down");
      const reader = new TimedReader(tun);
      expect(await reader.next(10)).not.toBeNull(); // a read is pending when the link goes
      await deleteLink(tun.name, { netns: NS });
      await down;
      // Packets the kernel sent before (IPv6 router solicitations and such) may come first.
      let result = await reader.next(5000);
      while (Array.isArray(result)) result = await reader.next(5000);
      expect(result).toBeNull();
      await expect(tun.read()).resolves.toBeNull();
    } finally {
      await tun.close();
    }
  });

  it("drops and counts packets the kernel refuses, without throwing", async () => {
    const tun = await createLinuxTun("tswgt-bad", { netns: NS });
    try {
      const good = buildEcho(ECHO_REQUEST, "10.77.4.2", "10.77.4.1", 5, 1, new Uint8Array(8));
      // Link down: the kernel refuses everything.
      await tun.write([good]);
      expect(tun.stats()).toMatchObject({ writeDropped: 1, lastWriteError: "EIO" });
      await setLinkUp(tun.name, { netns: NS });
      await tun.write([new Uint8Array(0), Uint8Array.of(0x10, 1, 2, 3), good]);
      expect(tun.stats()).toMatchObject({ writeDropped: 3, packetsWritten: 1, lastWriteError: "EINVAL" });
    } finally {
      await tun.close();
    }
  });

  it("native Tun: malformed calls throw TypeErrors, packets that are not bytes are dropped", () => {
    const Tun = loadNative().addon?.Tun;
    if (Tun === undefined) throw new Error("addon without Tun");
    const asUnknown = (f: unknown) => f as (...args: unknown[]) => unknown;
    expect(() => new (Tun as unknown as new (...args: unknown[]) => unknown)(5, null)).toThrow(TypeError);
    const tun = new Tun("tswgt-nat", `/var/run/netns/${NS}`);
    try {
      expect(() => asUnknown(tun.start.bind(tun))(() => {}, 0, 1)).toThrow(/batchSize must be an integer/);
      expect(() => asUnknown(tun.start.bind(tun))("nope", 8, 1)).toThrow(TypeError);
      expect(() => asUnknown(tun.write.bind(tun))("nope")).toThrow(TypeError);
      expect(asUnknown(tun.write.bind(tun))([42, "x", new Uint16Array(4), null])).toBe(4);
      expect(() => tun.setMtu(0)).toThrow(/mtu must be an integer/);
      tun.start(() => {}, 8, 1);
      expect(() => tun.start(() => {}, 8, 1)).toThrow(/already started/);
    } finally {
      tun.close();
      tun.close();
    }
    expect(() => tun.getMtu()).toThrow(/closed/);
    expect(tun.write([new Uint8Array([0x45])])).toBe(1);
  });

  it("gives clear errors for names in use, bad names and missing namespaces", async () => {
    const tun = await createLinuxTun("tswgt-dup", { netns: NS });
    try {
      await expect(createLinuxTun("tswgt-dup", { netns: NS })).rejects.toThrow(
        'interface name in use: "tswgt-dup" is already attached to another process',
      );
    } finally {
      await tun.close();
    }
    await expect(createLinuxTun("lo", { netns: NS })).rejects.toThrow(
      'interface name in use: "lo" exists and is not a TUN device',
    );
    await expect(createLinuxTun("tswgt-much-too-long", { netns: NS })).rejects.toThrow(
      /invalid interface name "tswgt-much-too-long": it is 19 bytes long, at most 15/,
    );
    await expect(createLinuxTun("tswgt0", { netns: `${NS}-missing` })).rejects.toThrow(
      `network namespace "${NS}-missing" not found`,
    );
    await expect(createLinuxTun("tswgt0", { netns: NS, mtu: 20 })).rejects.toThrow(/invalid MTU 20/);
  });
});

// Child processes run TypeScript through vite-node, which vitest brings along.
const viteNode = new URL("../../node_modules/vite-node/vite-node.mjs", import.meta.url).pathname;
const fixture = new URL("./fixtures/exit-child.ts", import.meta.url).pathname;
const childSkip = skipReason ?? (existsSync(viteNode) ? null : "vite-node is not installed");
const childTitle = childSkip === null ? "LinuxTun process lifetime" : `LinuxTun process lifetime (skipped: ${childSkip})`;

interface ChildRun {
  exited: Promise<number | null>;
  /** Resolves with the time the marker line was printed. */
  marker: Promise<number>;
  pid: number;
  output: () => string;
}

function startChild(netns: string, mode: string, marker: string, uid?: number): ChildRun {
  const args = [viteNode, fixture, netns, mode];
  const child =
    uid === undefined
      ? spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
      : spawn("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", process.execPath, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
        });
  let output = "";
  let markerSeen: (t: number) => void = () => {};
  const markerPromise = new Promise<number>((resolve) => (markerSeen = resolve));
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.includes(marker)) markerSeen(Date.now());
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { exited, marker: markerPromise, pid: child.pid ?? -1, output: () => output };
}

async function exitDelay(run: ChildRun): Promise<number> {
  const markedAt = await waitFor(`child marker (output: ${run.output()})`, run.marker, 15_000);
  const code = await waitFor(`child exit (output: ${run.output()})`, run.exited, 10_000);
  expect(code, run.output()).toBe(0);
  return Date.now() - markedAt;
}

describe.skipIf(childSkip !== null)(childTitle, () => {
  const EXIT_NS = netnsName("tunexit");
  beforeAll(async () => {
    await createNetns(EXIT_NS);
  });
  afterAll(async () => {
    await deleteNetns(EXIT_NS);
  });

  it("exits promptly after close with a read pending, the read resolving null", async () => {
    const child = startChild(EXIT_NS, "close", "closing");
    expect(await exitDelay(child)).toBeLessThan(3000);
    expect(child.output()).toMatch(/read resolved with null/);
    expect(await linkExists("tswgtx0", { netns: EXIT_NS })).toBe(false);
  });

  it("exits by itself when the device is unreferenced, even never closed", async () => {
    const child = startChild(EXIT_NS, "unref", "unreferenced");
    expect(await exitDelay(child)).toBeLessThan(3000);
    expect(await linkExists("tswgtx0", { netns: EXIT_NS })).toBe(false);
  });

  it("exits promptly on process.exit with the reader running", async () => {
    const child = startChild(EXIT_NS, "exit", "exiting");
    expect(await exitDelay(child)).toBeLessThan(3000);
  });

  it("stays alive while a read is pending on a referenced device", async () => {
    const child = startChild(EXIT_NS, "hold", "holding");
    try {
      await waitFor(`child marker (output: ${child.output()})`, child.marker, 15_000);
      const early = await Promise.race([child.exited, new Promise((r) => setTimeout(() => r("alive"), 1000))]);
      expect(early).toBe("alive");
    } finally {
      process.kill(child.pid, "SIGTERM");
      await waitFor("child exit after SIGTERM", child.exited);
    }
  });

  it.skipIf(!existsSync("/usr/bin/setpriv"))("tells an unprivileged user to run as root", async () => {
    const child = startChild("-", "close", "never printed", 65534);
    await waitFor("unprivileged child", child.exited, 15_000);
    expect(child.output()).toMatch(/cannot open \/dev\/net\/tun: permission denied \(run as root or with CAP_NET_ADMIN\)/);
  });
});
