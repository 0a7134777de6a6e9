import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ExecError,
  isAlive,
  netnsUnavailableReason,
  sweepStale,
  TestBed,
  TrackedProcess,
  waitFor,
  withTestBed,
  type Host,
  type Link,
} from "../helpers/netns.js";
import { runCommand as runCommandInRoot } from "../helpers/proc.js";

const reason = await netnsUnavailableReason();
if (reason !== null) console.warn(`skipping test-bed tests: ${reason}`);

async function namespaces(): Promise<string[]> {
  const r = await runCommandInRoot(["ip", "netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "");
}

describe.skipIf(reason !== null)("TestBed with two linked hosts", () => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  let link: Link;

  beforeAll(async () => {
    bed = await TestBed.create("pair");
    a = await bed.host("a");
    b = await bed.host("b");
    link = await bed.link(a, b, { a: "10.9.0.1/24", b: "10.9.0.2/24", a6: "fd00:9::1/64", b6: "fd00:9::2/64" });
  });
  afterAll(async () => {
    await bed?.cleanup();
  });

  it("names namespaces with the prefix, the PID and the bed", () => {
    expect(a.ns).toMatch(new RegExp(`^tswgt-${process.pid.toString(36).padStart(5, "0")}\\.[0-9a-z]{3}-pair-a$`));
    expect(bed.namespaces).toEqual([a.ns, b.ns]);
    expect(link.a).toMatchObject({ ifname: "to-b", ip4: "10.9.0.1", ip6: "fd00:9::1" });
    expect(link.b).toMatchObject({ ifname: "to-a", ip4: "10.9.0.2", ip6: "fd00:9::2" });
  });

  it("pings over IPv4 both ways", async () => {
    await a.exec(["ping", "-c1", "-W2", "10.9.0.2"]);
    const r = await b.exec(["ping", "-c1", "-W2", "10.9.0.1"]);
    expect(r.stdout).toMatch(/1 received/);
  });

  it("pings over IPv6 both ways, with no wait for DAD", async () => {
    await a.exec(["ping", "-6", "-c1", "-W2", "fd00:9::2"]);
    const r = await b.exec(["ping", "-6", "-c1", "-W2", "fd00:9::1"]);
    expect(r.stdout).toMatch(/1 received/);
  });

  it("keeps the veth out of the root namespace", async () => {
    const root = await runCommandInRoot(["ip", "-o", "link", "show"]);
    expect(root.stdout).not.toMatch(/\bto-b\b/);
    const inA = await a.ip(["-o", "link", "show", "to-b"]);
    expect(inA.stdout).toMatch(/to-b/);
  });

  it("isolates hosts: the root namespace cannot reach them", async () => {
    const r = await runCommandInRoot(["ping", "-c1", "-W1", "10.9.0.2"], { check: false });
    expect(r.code).not.toBe(0);
  });

  it("exec throws ExecError on failure, unless check is false", async () => {
    await expect(a.exec(["sh", "-c", "echo nope >&2; exit 5"])).rejects.toThrow(ExecError);
    await expect(a.exec(["sh", "-c", "echo nope >&2; exit 5"])).rejects.toThrow(/exited with code 5:\nnope/);
    expect((await a.exec(["sh", "-c", "exit 5"], { check: false })).code).toBe(5);
  });

  it("exec honours its timeout", async () => {
    await expect(a.exec(["sleep", "20"], { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
  });

  it("sets sysctls per namespace", async () => {
    await a.sysctl("net.ipv4.ip_forward", 1);
    expect((await a.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("1");
    expect((await b.exec(["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("0");
  });

  it("spawns processes that run inside the namespace", async () => {
    const p = a.spawn(["sh", "-c", "ip -o addr show dev to-b; exec sleep 30"]);
    await p.waitForOutput(/10\.9\.0\.1\/24/);
    expect(bed.processes).toContain(p);
    await p.stop();
    expect(p.running).toBe(false);
  });

  it("gives unique short interface names", () => {
    const n1 = bed.ifname("wgA");
    const n2 = bed.ifname("wgB");
    expect(n1).not.toBe(n2);
    expect(n1.length).toBeLessThanOrEqual(15);
    expect(n1.startsWith("wgA")).toBe(true);
    expect(() => bed.ifname("muchtoolongtag")).toThrow(/at most 7 characters/);
    expect(() => bed.ifname("wg-0")).toThrow(/letters\/digits/);
  });

  it("rejects bad host labels and link options clearly", async () => {
    await expect(bed.host("a")).rejects.toThrow(/already has a host "a"/);
    await expect(bed.host("has-dash")).rejects.toThrow(/must be 1-10 letters or digits/);
    await expect(bed.link(a, a)).rejects.toThrow(/itself/);
    await expect(bed.link(a, b, { a: "fd00::1/64" })).rejects.toThrow(/must be an IPv4 address/);
    await expect(bed.link(a, b, { a: "10.9.1.1" })).rejects.toThrow(/needs a prefix length/);
    await expect(bed.link(a, b, { ifA: "to-b" })).rejects.toThrow(/already has an interface "to-b"/);
    await expect(bed.link(a, b, { ifA: "x".repeat(16) })).rejects.toThrow(/1-15 characters/);
  });

  it("numbers a second link between the same hosts", async () => {
    const l2 = await bed.link(a, b, { a: "10.9.1.1/24", b: "10.9.1.2/24", mtu: 1280 });
    expect(l2.a.ifname).toBe("to-b-2");
    expect((await a.ip(["-o", "link", "show", "to-b-2"])).stdout).toMatch(/mtu 1280/);
    await a.exec(["ping", "-c1", "-W2", "10.9.1.2"]);
  });
});

describe.skipIf(reason !== null)("TestBed cleanup", () => {
  it("stops spawned processes by PID and deletes the namespaces", async () => {
    const bed = await TestBed.create("clean");
    const a = await bed.host("a");
    const b = await bed.host("b");
    await bed.link(a, b, { a: "10.9.2.1/24", b: "10.9.2.2/24" });
    const sleeper = a.spawn(["sleep", "300"]);
    // Ignores SIGTERM, so cleanup has to escalate to SIGKILL.
    const stubborn = b.spawn(["sh", "-c", "trap '' TERM; echo up; while :; do sleep 1; done"]);
    await stubborn.waitForOutput("up");
    expect(isAlive(sleeper.pid)).toBe(true);
    expect(await namespaces()).toEqual(expect.arrayContaining([a.ns, b.ns]));

    await bed.cleanup({ graceMs: 300 });

    expect(isAlive(sleeper.pid)).toBe(false);
    expect(isAlive(stubborn.pid)).toBe(false);
    expect(sleeper.exitStatus?.signal).toBe("SIGTERM");
    expect(stubborn.exitStatus?.signal).toBe("SIGKILL");
    const left = await namespaces();
    expect(left).not.toContain(a.ns);
    expect(left).not.toContain(b.ns);
    expect(bed.closed).toBe(true);
  });

  it("is idempotent and refuses use afterwards", async () => {
    const bed = await TestBed.create("idem");
    const a = await bed.host("a");
    const first = bed.cleanup();
    const second = bed.cleanup();
    expect(second).toBe(first);
    await first;
    await bed.cleanup();
    await expect(bed.host("b")).rejects.toThrow(/has been cleaned up/);
    expect(() => a.spawn(["true"])).toThrow(/has been cleaned up/);
  });

  it("kills processes left behind by exec'd commands", async () => {
    const bed = await TestBed.create("orphan");
    const a = await bed.host("a");
    // A background process that the bed did not spawn itself.
    const r = await a.exec(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]);
    const pid = Number(r.stdout.trim());
    expect(isAlive(pid)).toBe(true);
    await bed.cleanup();
    await waitFor(() => !isAlive(pid), { what: `orphan ${pid} to die`, timeoutMs: 3000 });
    expect(await namespaces()).not.toContain(a.ns);
  });

  it("cleans up after a thrown error (withTestBed)", async () => {
    let ns = "";
    let pid = 0;
    await expect(
      withTestBed("thrown", async (bed) => {
        const a = await bed.host("a");
        ns = a.ns;
        pid = a.spawn(["sleep", "300"]).pid;
        throw new Error("boom in the middle of a test");
      }),
    ).rejects.toThrow("boom in the middle of a test");
    expect(ns).not.toBe("");
    expect(await namespaces()).not.toContain(ns);
    expect(isAlive(pid)).toBe(false);
  });

  it("cleans up in afterAll when a test body fails (the documented pattern)", async () => {
    // The pattern from docs/testbed.md, run by hand: the body throws, the hook still cleans.
    let bed: TestBed | undefined;
    const body = async (): Promise<void> => {
      bed = await TestBed.create("hook");
      await bed.host("a");
      throw new Error("assertion failed");
    };
    const afterAllHook = async (): Promise<void> => {
      await bed?.cleanup();
    };
    await expect(body()).rejects.toThrow("assertion failed");
    const ns = bed!.namespaces[0]!;
    expect(await namespaces()).toContain(ns);
    await afterAllHook();
    expect(await namespaces()).not.toContain(ns);
  });
});

describe.skipIf(reason !== null)("interrupted test processes", () => {
  const fixture = new URL("./fixtures/interrupted-bed.ts", import.meta.url).pathname;
  const viteNode = new URL("../../node_modules/vite-node/vite-node.mjs", import.meta.url).pathname;

  let child: TrackedProcess | undefined;
  afterEach(async () => {
    await child?.stop();
  });

  async function startChild(): Promise<{ proc: TrackedProcess; ns: string; sleepPid: number }> {
    child = new TrackedProcess([process.execPath, viteNode, fixture]);
    const line = await child.waitForOutput(/READY \S+ \d+/, { timeoutMs: 20_000 });
    const [, ns, pid] = line.split(" ");
    return { proc: child, ns: ns!, sleepPid: Number(pid) };
  }

  it("removes everything when the process gets SIGTERM", async () => {
    {
      const { proc, ns, sleepPid } = await startChild();
      expect(await namespaces()).toContain(ns);
      expect(isAlive(sleepPid)).toBe(true);
      process.kill(proc.pid, "SIGTERM");
      const st = await proc.exited;
      expect(st.signal).toBe("SIGTERM"); // the handler re-raised the signal after cleaning up
      expect(await namespaces()).not.toContain(ns);
      await waitFor(() => !isAlive(sleepPid), { what: "the child's sleep to die", timeoutMs: 3000 });
    }
  });

  it("sweepStale removes leftovers of a SIGKILLed process, and nothing live", async () => {
    await withTestBed("sigkill", async (bed) => {
      const live = await bed.host("live");
      const { proc, ns, sleepPid } = await startChild();
      process.kill(proc.pid, "SIGKILL");
      await proc.exited;
      expect(await namespaces()).toContain(ns); // no handler runs on SIGKILL
      const removed = await sweepStale();
      expect(removed).toContain(ns);
      expect(removed).not.toContain(live.ns);
      expect(await namespaces()).not.toContain(ns);
      expect(await namespaces()).toContain(live.ns);
      await waitFor(() => !isAlive(sleepPid), { what: "the stale namespace's sleep to die", timeoutMs: 3000 });
    });
  });
});
