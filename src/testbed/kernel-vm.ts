/**
 * A throw-away virtual machine with a real Debian Linux kernel, for testing against kernel
 * features this machine's own kernel may lack (the WireGuard module above all).
 *
 * Image: a Debian `linux-image-6.1.*-amd64` package, fetched with `apt-get download` and unpacked
 * (never installed) into a cache directory; its compressed kernel is cut down to a plain vmlinux,
 * which boots faster under QEMU's emulation; a small busybox initramfs loads the virtio and 9p
 * modules. Run: QEMU (TCG, no network device) shares the host's `/` read-only and the checkout
 * read-write; the guest chroots into the host's tree (so node, ip, wg, nft are the host's),
 * mounts fresh /proc, /sys, /dev, /tmp and /run, and runs one shell script of the checkout. Any
 * module the guest kernel asks for is loaded from the unpacked package through a modprobe
 * wrapper. Everything the script does stays inside the VM.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, isAbsolute, join, relative } from "node:path";
import { cpioArchive, type CpioEntry } from "./cpio.js";

export interface KernelVmImage {
  /** Uncompressed kernel (ELF with a PVH entry point). */
  kernel: string;
  initrd: string;
  /** Kernel release, e.g. "6.1.0-50-amd64". */
  release: string;
  /** Root of the unpacked package: lib/modules/<release> lives below it. */
  modulesRoot: string;
}

export interface KernelVmBuildOptions {
  /** Where the package, its unpacked tree and the image are kept between runs. */
  cacheDir: string;
  /** Package name; default: the newest `linux-image-6.1.0-*-amd64` apt knows. */
  kernelPackage?: string;
}

export interface KernelVmRunOptions {
  /** Directory shared read-write; must be a directory of the host tree (it is mounted over itself). */
  shareDir: string;
  /** Shell script to run in the guest, relative to shareDir. */
  script: string;
  /** Kill QEMU after this long. Default 300 000 ms. */
  timeoutMs?: number;
  memoryMiB?: number;
  cpus?: number;
  /** Console output as it arrives. */
  onOutput?: (text: string) => void;
}

export interface KernelVmResult {
  /** The script's exit status, or null when it never reported one (crash, timeout). */
  exitCode: number | null;
  output: string;
  durationMs: number;
  timedOut: boolean;
}

const REQUIRED_COMMANDS = ["qemu-system-x86_64", "apt-get", "apt-cache", "dpkg", "depmod", "xz"];
/** Modules the initramfs loads itself, before the host tree is reachable (dependencies are added). */
const EARLY_MODULES = ["virtio_pci", "virtio_rng", "9pnet_virtio", "9p"];
const BUSYBOX_PATHS = ["/bin/busybox", "/usr/bin/busybox"];
const EXIT_MARK = "tswg-vm-exit=";

function onPath(cmd: string): boolean {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  return dirs.some((d) => d !== "" && existsSync(join(d, cmd)));
}

function busyboxPath(): string | null {
  return BUSYBOX_PATHS.find((p) => existsSync(p)) ?? null;
}

/** Null when a kernel VM can be built and run here; otherwise why not. */
export function kernelVmUnavailableReason(): string | null {
  if (process.platform !== "linux" || process.arch !== "x64") return "the kernel VM needs Linux on x86-64";
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "the kernel VM needs root (9p shares of /)";
  const missing = REQUIRED_COMMANDS.filter((c) => !onPath(c));
  if (busyboxPath() === null) missing.push("busybox (busybox-static)");
  return missing.length === 0 ? null : `missing commands for the kernel VM: ${missing.join(", ")} (scripts/setup.sh installs them)`;
}

function run(argv: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: opts.cwd, input: opts.input, maxBuffer: 512 << 20 });
  if (r.error !== undefined) throw new Error(`${argv.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited with ${r.status}: ${r.stderr.toString().trim()}`);
  return r.stdout;
}

function newestKernelPackage(): string {
  const out = run(["apt-cache", "search", "--names-only", "^linux-image-6\\.1\\.0-[0-9]+-amd64$"]).toString();
  const names = out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => /^linux-image-6\.1\.0-\d+-amd64$/.test(n));
  if (names.length === 0) throw new Error("apt knows no linux-image-6.1.0-*-amd64 package (run apt-get update)");
  const abi = (n: string): number => Number(/6\.1\.0-(\d+)-/.exec(n)![1]);
  return names.sort((a, b) => abi(b) - abi(a))[0]!;
}

/** Cuts the xz-compressed payload out of a bzImage and decompresses it. */
function extractVmlinux(bzImage: Buffer): Buffer {
  const magic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
  const at = bzImage.indexOf(magic);
  if (at < 0) throw new Error("kernel image: no xz payload found");
  const r = spawnSync("xz", ["-dc", "--single-stream"], { input: bzImage.subarray(at), maxBuffer: 512 << 20 });
  if (r.stdout.length < 4 || r.stdout.readUInt32BE(0) !== 0x7f454c46) throw new Error("kernel image: the xz payload is not an ELF kernel");
  return r.stdout;
}

/** Module file paths (relative to the release directory) for `names` and their dependencies, in load order. */
export function moduleLoadOrder(modulesDep: string, names: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const file = line.slice(0, colon);
    deps.set(file, line.slice(colon + 1).trim().split(/\s+/).filter((s) => s !== ""));
    byName.set(basename(file).replace(/\.ko(\.\w+)?$/, "").replace(/-/g, "_"), file);
  }
  const order: string[] = [];
  const visit = (file: string): void => {
    if (order.includes(file)) return;
    for (const d of deps.get(file) ?? []) visit(d);
    order.push(file);
  };
  for (const n of names) {
    const file = byName.get(n.replace(/-/g, "_"));
    if (file !== undefined) visit(file); // absent: built into the kernel
  }
  return order;
}

function initScript(): string {
  return `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/early-modules); do insmod "/mods/$m" || echo "insmod $m failed"; done
arg() { tr ' ' '\\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
SHARE=$(arg tswgshare); SCRIPT=$(arg tswgscript); MODROOT=$(arg tswgmodroot)
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /host || echo "mounting the host tree failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose share "/host$SHARE" || echo "mounting the share failed"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs shm /host/dev/shm
mount -t tmpfs tmp /host/tmp
mount -t tmpfs run /host/run
echo "$MODROOT" > /etc/modroot
echo /sbin/modprobe-host > /proc/sys/kernel/modprobe
ip link set lo up
chroot /host /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TSWG_IN_VM=1 TSWG_VM_MODROOT="$MODROOT" /bin/sh -c "cd '$SHARE' && exec /bin/sh '$SCRIPT'" < /dev/console > /dev/console 2>&1
echo "${EXIT_MARK}$?"
sync
poweroff -f
`;
}

const MODPROBE_WRAPPER = `#!/bin/sh
exec chroot /host /usr/sbin/modprobe -d "$(cat /etc/modroot)" "$@"
`;

/** Fetches and unpacks the kernel once, then (re)writes the initramfs. */
export function buildKernelVm(opts: KernelVmBuildOptions): KernelVmImage {
  const why = kernelVmUnavailableReason();
  if (why !== null) throw new Error(why);
  const cache = opts.cacheDir;
  mkdirSync(cache, { recursive: true });
  const rootDir = join(cache, "root");
  const kernel = join(cache, "vmlinux");
  let deb = readdirSync(cache).find((f) => /^linux-image-6\.1\..*_amd64\.deb$/.test(f) && (opts.kernelPackage === undefined || f.startsWith(`${opts.kernelPackage}_`)));
  if (deb === undefined) {
    run(["apt-get", "download", opts.kernelPackage ?? newestKernelPackage()], { cwd: cache });
    deb = readdirSync(cache).find((f) => /^linux-image-6\.1\..*_amd64\.deb$/.test(f));
    if (deb === undefined) throw new Error("apt-get download left no kernel package");
  }
  const stamp = join(cache, "unpacked");
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== deb) {
    run(["rm", "-rf", rootDir, kernel]);
    run(["dpkg", "-x", join(cache, deb), rootDir]);
    writeFileSync(stamp, deb);
  }
  const releases = readdirSync(join(rootDir, "lib/modules"));
  if (releases.length !== 1) throw new Error(`expected one kernel release in ${deb}, found ${releases.join(", ")}`);
  const release = releases[0]!;
  const modDir = join(rootDir, "lib/modules", release);
  if (!existsSync(join(modDir, "modules.dep"))) run(["depmod", "-b", rootDir, release]);
  if (!existsSync(kernel)) writeFileSync(kernel, extractVmlinux(readFileSync(join(rootDir, "boot", `vmlinuz-${release}`))));

  const early = moduleLoadOrder(readFileSync(join(modDir, "modules.dep"), "utf8"), EARLY_MODULES);
  const entries: CpioEntry[] = ["bin", "sbin", "etc", "proc", "sys", "dev", "host", "mods", "tmp"].map((d) => ({ type: "dir", path: d }));
  entries.push({ type: "file", path: "bin/busybox", data: readFileSync(busyboxPath()!), mode: 0o755 });
  entries.push({ type: "symlink", path: "bin/sh", target: "busybox" });
  entries.push({ type: "file", path: "init", data: Buffer.from(initScript()), mode: 0o755 });
  entries.push({ type: "file", path: "sbin/modprobe-host", data: Buffer.from(MODPROBE_WRAPPER), mode: 0o755 });
  entries.push({ type: "file", path: "etc/early-modules", data: Buffer.from(early.map((f) => basename(f)).join("\n") + "\n") });
  for (const f of early) entries.push({ type: "file", path: `mods/${basename(f)}`, data: readFileSync(join(modDir, f)) });
  const initrd = join(cache, "initrd.cpio");
  writeFileSync(initrd, cpioArchive(entries));
  return { kernel, initrd, release, modulesRoot: rootDir };
}

/** Boots the image, runs the script and powers off. Never hangs: the timeout kills QEMU by PID. */
export function runKernelVm(image: KernelVmImage, opts: KernelVmRunOptions): Promise<KernelVmResult> {
  if (!isAbsolute(opts.shareDir)) throw new RangeError("runKernelVm: shareDir must be absolute");
  if (isAbsolute(opts.script) || relative(opts.shareDir, join(opts.shareDir, opts.script)).startsWith("..")) {
    throw new RangeError("runKernelVm: script must be a path inside shareDir");
  }
  if (/[\s'"]/.test(opts.shareDir + opts.script + image.modulesRoot)) throw new RangeError("runKernelVm: paths must not contain spaces or quotes");
  const cmdline = [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "oops=panic",
    `tswgshare=${opts.shareDir}`,
    `tswgscript=${opts.script}`,
    `tswgmodroot=${image.modulesRoot}`,
  ].join(" ");
  const cpus = opts.cpus ?? 2;
  const argv = [
    "-accel", cpus > 1 ? "tcg,thread=multi" : "tcg",
    "-cpu", "max",
    "-smp", String(cpus),
    "-m", String(opts.memoryMiB ?? 1536),
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-serial", "stdio",
    "-nic", "none",
    "-device", "virtio-rng-pci",
    "-kernel", image.kernel,
    "-initrd", image.initrd,
    "-append", cmdline,
    "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    "-virtfs", `local,path=${opts.shareDir},mount_tag=share,security_model=none,multidevs=remap`,
  ];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn("qemu-system-x86_64", argv, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let timedOut = false;
    const collect = (d: Buffer): void => {
      const text = d.toString("utf8").replace(/\r/g, "");
      output += text;
      opts.onOutput?.(text);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 300_000);
    const finish = (): void => {
      clearTimeout(timer);
      const m = new RegExp(`${EXIT_MARK}(\\d+)`).exec(output);
      resolve({ exitCode: m === null ? null : Number(m[1]), output, durationMs: Date.now() - started, timedOut });
    };
    child.on("error", (e) => {
      output += `cannot start qemu-system-x86_64: ${e.message}\n`;
      finish();
    });
    child.on("close", finish);
  });
}
