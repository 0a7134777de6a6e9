/**
 * Test beds made of Linux network namespaces: hosts, veth links between them, commands and
 * long-running processes inside them, and cleanup that also happens on failure or interruption.
 * See docs/testbed.md; topology.ts builds NAT scenarios on top of this.
 *
 * Every namespace is named `tswgt-<pid base 36>.<random>-<bed>-<host>` (see names.ts), so
 * leftovers of a test process that died can be recognised and judged stale by the dead PID.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCidr } from "../allowedips/prefix.js";
import { formatIp } from "../allowedips/ip.js";
import { creatorPid, namespaceName, newBedId } from "./names.js";
import { netnsUnavailableReason } from "./privileges.js";
import { isAlive, runCommand, TrackedProcess, type ExecOptions, type ExecResult, type SpawnOptions } from "./proc.js";

export { waitFor, sleep, WaitTimeoutError, type WaitForOptions } from "./wait.js";
export { hasRoot, canUseNetns, netnsUnavailableReason } from "./privileges.js";
export { NETNS_PREFIX } from "./names.js";
export { ExecError, isAlive, TrackedProcess, type ExecOptions, type ExecResult, type SpawnOptions } from "./proc.js";

const IFNAMSIZ_MAX = 15;

export interface HostOptions {
  /** Enable IPv4 and IPv6 forwarding (for routers and NAT boxes). */
  forwarding?: boolean;
}

export interface LinkOptions {
  /** IPv4 address with prefix for the first host's end, e.g. "10.9.0.1/24". */
  a?: string;
  /** IPv4 address with prefix for the second host's end. */
  b?: string;
  /** IPv6 address with prefix for the first host's end (added with `nodad`: usable at once). */
  a6?: string;
  b6?: string;
  /** Interface names (at most 15 characters); default `to-<other host>`. */
  ifA?: string;
  ifB?: string;
  mtu?: number;
}

export interface LinkEnd {
  host: Host;
  ifname: string;
  /** The IPv4 / IPv6 address without prefix, when one was given. */
  ip4?: string;
  ip6?: string;
}

export interface Link {
  a: LinkEnd;
  b: LinkEnd;
}

export interface CleanupOptions {
  /** How long spawned processes get between SIGTERM and SIGKILL. Default 2000 ms. */
  graceMs?: number;
}

/** One network namespace of a test bed, with `lo` up. */
export class Host {
  /** @internal created by {@link TestBed.host} */
  constructor(
    readonly bed: TestBed,
    /** The short name given to {@link TestBed.host}. */
    readonly label: string,
    /** The namespace's name, for `ip netns exec` or `ip -n`. */
    readonly ns: string,
  ) {}

  /** Runs a command inside the namespace. Throws on non-zero exit unless `{check: false}`. */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    this.bed.assertOpen();
    return runCommand(["ip", "netns", "exec", this.ns, ...argv], opts);
  }

  /** `ip <args>` for this namespace (`ip -n <ns> ...`). */
  ip(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    this.bed.assertOpen();
    return runCommand(["ip", "-n", this.ns, ...args], opts);
  }

  /** Sets a sysctl inside the namespace, e.g. `sysctl("net.ipv4.ip_forward", 1)`. */
  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec(["sysctl", "-qw", `${key}=${value}`]);
  }

  /**
   * Starts a long-running process inside the namespace. It is tracked by the bed and stopped
   * (by PID: SIGTERM, then SIGKILL) at cleanup if still running.
   */
  spawn(argv: readonly string[], opts?: SpawnOptions): TrackedProcess {
    this.bed.assertOpen();
    const proc = new TrackedProcess(["ip", "netns", "exec", this.ns, ...argv], opts);
    this.bed.track(proc);
    return proc;
  }

  toString(): string {
    return this.ns;
  }
}

const liveBeds = new Set<TestBed>();
let handlersInstalled = false;
let sweptOnce = false;

export class TestBed {
  private readonly hosts: Host[] = [];
  private readonly procs = new Set<TrackedProcess>();
  private readonly ifnames = new Set<string>();
  private readonly tempDirs: string[] = [];
  private readonly ifnamesUsed = new Map<Host, Set<string>>();
  private cleaning: Promise<void> | null = null;

  private constructor(
    /** The name given to {@link TestBed.create}, sanitised. */
    readonly name: string,
    /** Unique for this bed on this machine: `<pid base 36>.<3 random>`. */
    readonly id: string,
  ) {}

  /**
   * A new, empty test bed. Throws (with the reason) when namespaces cannot be used here; call
   * {@link netnsUnavailableReason} first to skip instead. The first call in a process also
   * removes stale leftovers of dead test processes ({@link sweepStale}).
   */
  static async create(name = "bed"): Promise<TestBed> {
    const reason = await netnsUnavailableReason();
    if (reason !== null) throw new Error(`cannot build a test bed: ${reason}`);
    if (!sweptOnce) {
      sweptOnce = true;
      await sweepStale();
    }
    installExitHandlers();
    const clean = name.toLowerCase().replace(/[^a-z0-9]/g, "").slice(0, 12) || "bed";
    const bed = new TestBed(clean, newBedId());
    liveBeds.add(bed);
    return bed;
  }

  /** True once {@link cleanup} has started. */
  get closed(): boolean {
    return this.cleaning !== null;
  }

  /** Namespace names of the hosts made so far. */
  get namespaces(): string[] {
    return this.hosts.map((h) => h.ns);
  }

  /** Processes spawned in this bed (running or not). */
  get processes(): TrackedProcess[] {
    return [...this.procs];
  }

  /** A new host: a namespace with `lo` up. `label`: 1-10 letters/digits, starting with a letter. */
  async host(label: string, opts: HostOptions = {}): Promise<Host> {
    this.assertOpen();
    if (!/^[a-z][a-z0-9]{0,9}$/i.test(label)) {
      throw new Error(`host label "${label}" must be 1-10 letters or digits, starting with a letter`);
    }
    // Compared without case because the namespace name is lower-case.
    if (this.hosts.some((h) => h.label.toLowerCase() === label.toLowerCase())) {
      throw new Error(`test bed ${this.name} already has a host "${label}"`);
    }
    const ns = namespaceName(this.id, this.name, label.toLowerCase());
    const host = new Host(this, label, ns);
    // Registered before it exists, so that a failure half-way still gets it deleted.
    this.hosts.push(host);
    this.ifnamesUsed.set(host, new Set(["lo"]));
    await runCommand(["ip", "netns", "add", ns]);
    await host.ip(["link", "set", "lo", "up"]);
    if (opts.forwarding) {
      await host.sysctl("net.ipv4.ip_forward", 1);
      await host.sysctl("net.ipv6.conf.all.forwarding", 1);
    }
    return host;
  }

  /**
   * Connects two hosts with a veth pair created directly inside the namespaces (nothing appears
   * in the root namespace), assigns the given addresses and brings both ends up.
   */
  async link(a: Host, b: Host, opts: LinkOptions = {}): Promise<Link> {
    this.assertOpen();
    for (const h of [a, b]) if (h.bed !== this) throw new Error(`host ${h.ns} belongs to another test bed`);
    if (a === b) throw new Error("link: a host cannot be linked to itself");
    const v4a = opts.a === undefined ? undefined : checkAddr(opts.a, 4, "a");
    const v4b = opts.b === undefined ? undefined : checkAddr(opts.b, 4, "b");
    const v6a = opts.a6 === undefined ? undefined : checkAddr(opts.a6, 6, "a6");
    const v6b = opts.b6 === undefined ? undefined : checkAddr(opts.b6, 6, "b6");
    const ifA = this.pickIfname(a, opts.ifA, `to-${b.label}`);
    const ifB = this.pickIfname(b, opts.ifB, `to-${a.label}`);
    this.ifnamesUsed.get(a)!.add(ifA);
    this.ifnamesUsed.get(b)!.add(ifB);
    try {
      await runCommand(["ip", "link", "add", ifA, "netns", a.ns, "type", "veth", "peer", "name", ifB, "netns", b.ns]);
    } catch (e) {
      this.ifnamesUsed.get(a)!.delete(ifA);
      this.ifnamesUsed.get(b)!.delete(ifB);
      throw e;
    }
    const setup = async (h: Host, ifname: string, v4: string | undefined, v6: string | undefined): Promise<void> => {
      if (opts.mtu !== undefined) await h.ip(["link", "set", ifname, "mtu", String(opts.mtu)]);
      if (v4 !== undefined) await h.ip(["addr", "add", v4, "dev", ifname]);
      if (v6 !== undefined) await h.ip(["addr", "add", v6, "dev", ifname, "nodad"]);
      await h.ip(["link", "set", ifname, "up"]);
    };
    await setup(a, ifA, opts.a, opts.a6);
    await setup(b, ifB, opts.b, opts.b6);
    return {
      a: { host: a, ifname: ifA, ip4: v4a, ip6: v6a },
      b: { host: b, ifname: ifB, ip4: v4b, ip6: v6b },
    };
  }

  /**
   * An interface name unique on this machine, for WireGuard interfaces: `<tag><bed id>`.
   * Needed because every namespace shares /var/run/wireguard/<name>.sock, so two processes
   * using "wg0" in two namespaces (or two test files running in parallel) would collide.
   * The UAPI socket of the name is removed at cleanup.
   */
  ifname(tag: string): string {
    const name = `${tag}${this.id.replace(".", "")}`;
    if (!/^[a-z][a-z0-9]*$/i.test(tag) || name.length > IFNAMSIZ_MAX) {
      throw new Error(`ifname tag "${tag}" must be letters/digits, starting with a letter, at most ${IFNAMSIZ_MAX - name.length + tag.length} characters`);
    }
    this.ifnames.add(name);
    return name;
  }

  /**
   * A new private directory (mode 0700) for configuration files, certificates or logs of the
   * bed's processes, removed at cleanup. Named like the namespaces (`tswgt-<bed id>-<bed>-<tag><n>`
   * under the system's temporary directory), so {@link sweepStale} also removes those of dead
   * processes. `tag`: 1-10 letters/digits.
   */
  tempDir(tag: string): string {
    this.assertOpen();
    if (!/^[a-z][a-z0-9]{0,9}$/i.test(tag)) throw new Error(`tempDir tag "${tag}" must be 1-10 letters or digits, starting with a letter`);
    const dir = join(tmpdir(), namespaceName(this.id, this.name, `${tag.toLowerCase()}${this.tempDirs.length + 1}`));
    mkdirSync(dir, { mode: 0o700 });
    this.tempDirs.push(dir);
    return dir;
  }

  /**
   * Stops every spawned process still running (SIGTERM, then SIGKILL after `graceMs`), kills
   * anything else left inside the bed's namespaces, deletes the namespaces (and so the veths)
   * and the UAPI sockets of names from {@link ifname}, and the directories from {@link tempDir}. Idempotent; concurrent calls share one
   * run. Throws after doing everything it can if some step failed.
   */
  cleanup(opts: CleanupOptions = {}): Promise<void> {
    this.cleaning ??= this.doCleanup(opts.graceMs ?? 2000);
    return this.cleaning;
  }

  /** @internal */
  assertOpen(): void {
    if (this.cleaning !== null) throw new Error(`test bed ${this.name} (${this.id}) has been cleaned up`);
  }

  /** @internal */
  track(proc: TrackedProcess): void {
    this.procs.add(proc);
  }

  private pickIfname(h: Host, wanted: string | undefined, base: string): string {
    const used = this.ifnamesUsed.get(h)!;
    let name = wanted;
    if (name === undefined) {
      name = base.slice(0, IFNAMSIZ_MAX);
      for (let n = 2; used.has(name); n++) name = `${base.slice(0, IFNAMSIZ_MAX - 1 - String(n).length)}-${n}`;
    }
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new Error(`interface name "${name}" must be 1-15 characters of letters, digits, "_", "." or "-"`);
    if (used.has(name)) throw new Error(`host ${h.label} already has an interface "${name}"`);
    return name;
  }

  private async doCleanup(graceMs: number): Promise<void> {
    const failures: string[] = [];
    await Promise.all([...this.procs].map((p) => p.stop(graceMs)));
    for (const h of this.hosts) {
      try {
        await killNamespacePids(h.ns);
        const r = await runCommand(["ip", "netns", "del", h.ns], { check: false, timeoutMs: 10_000 });
        if (r.code !== 0 && !/No such file/i.test(r.stderr)) failures.push(`ip netns del ${h.ns}: ${r.stderr.trim()}`);
      } catch (e) {
        failures.push(`${h.ns}: ${(e as Error).message}`);
      }
    }
    this.removeFiles();
    liveBeds.delete(this);
    if (failures.length > 0) throw new Error(`test bed ${this.name} cleanup incomplete:\n${failures.join("\n")}`);
  }

  /** Last-resort cleanup from an exit or signal handler, where nothing asynchronous runs. */
  cleanupSync(): void {
    this.cleaning ??= Promise.resolve();
    for (const p of this.procs) p.signal("SIGKILL");
    for (const h of this.hosts) {
      killNamespacePidsSync(h.ns);
      try {
        execFileSync("ip", ["netns", "del", h.ns], { stdio: "ignore", timeout: 5000 });
      } catch {
        // not created, or already gone
      }
    }
    this.removeFiles();
    liveBeds.delete(this);
  }

  private removeFiles(): void {
    for (const n of this.ifnames) rmSync(`/var/run/wireguard/${n}.sock`, { force: true });
    for (const d of this.tempDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        // left for sweepStale
      }
    }
  }
}

function checkAddr(text: string, family: 4 | 6, what: string): string {
  const p = parseCidr(text);
  if (p.family !== family) throw new Error(`link option ${what} must be an IPv${family} address with prefix, got "${text}"`);
  if (!text.includes("/")) throw new Error(`link option ${what} needs a prefix length, e.g. "${text}/${family === 4 ? 24 : 64}"`);
  return formatIp(p.bytes);
}

function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

/** Kills whatever still runs in one of our namespaces (helpers started by commands, for example). */
async function killNamespacePids(ns: string): Promise<void> {
  const r = await runCommand(["ip", "netns", "pids", ns], { check: false, timeoutMs: 5000 });
  for (const pid of parsePids(r.stdout)) killQuietly(pid);
}

function killNamespacePidsSync(ns: string): void {
  try {
    const out = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 });
    for (const pid of parsePids(out)) killQuietly(pid);
  } catch {
    // namespace already gone
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/**
 * Removes namespaces with the test prefix whose creating process (the PID in the name) is dead,
 * killing anything still running inside them first, and such processes' {@link TestBed.tempDir}
 * directories. Returns the namespace names removed.
 */
export async function sweepStale(): Promise<string[]> {
  const r = await runCommand(["ip", "netns", "list"], { check: false, timeoutMs: 5000 });
  const removed: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const ns = line.trim().split(/\s+/)[0] ?? "";
    const pid = creatorPid(ns);
    if (pid === null || pid === process.pid || isAlive(pid)) continue;
    await killNamespacePids(ns);
    const del = await runCommand(["ip", "netns", "del", ns], { check: false, timeoutMs: 10_000 });
    if (del.code === 0) removed.push(ns);
  }
  sweepStaleTempDirs();
  return removed;
}

function sweepStaleTempDirs(): void {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of entries) {
    const pid = creatorPid(name);
    if (pid === null || pid === process.pid || isAlive(pid)) continue;
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // not ours to fight over
    }
  }
}

function cleanupAllSync(): void {
  for (const bed of [...liveBeds]) bed.cleanupSync();
}

/**
 * Registered once per process: on exit and on SIGINT/SIGTERM/SIGHUP, remove everything live
 * beds created. When nothing else handles the signal, it is re-raised so the process still ends.
 */
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", cleanupAllSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const handler = (): void => {
      cleanupAllSync();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

/**
 * Runs `fn` with a fresh test bed and always cleans it up afterwards, also when `fn` throws
 * (the error from `fn` wins over a cleanup error).
 */
export async function withTestBed<R>(name: string, fn: (bed: TestBed) => Promise<R>): Promise<R> {
  const bed = await TestBed.create(name);
  let result: R;
  try {
    result = await fn(bed);
  } catch (e) {
    await bed.cleanup().catch(() => {});
    throw e;
  }
  await bed.cleanup();
  return result;
}
