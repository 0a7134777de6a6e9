/**
 * Interface set-up with iproute2's `ip`, the commands wg-quick runs, so that every step can be
 * seen, copied into a shell and reproduced. Each function runs `ip` directly (execFile, no
 * shell) and throws an Error holding the full command line and ip's own message.
 */
import { execFile } from "node:child_process";
import { checkInterfaceName } from "./interface-name.js";

export interface IpOptions {
  /** Run inside this named network namespace (`ip -n NS …`). */
  netns?: string;
  /** The ip binary; default $TSWG_IP or "ip" from PATH. */
  ip?: string;
}

export interface RouteOptions extends IpOptions {
  /** Routing table (number or name from /etc/iproute2/rt_tables); default main. */
  table?: number | string;
}

const TIMEOUT_MS = 10_000;

/** Runs `ip` with `args`; resolves with its standard output. */
export function runIp(args: readonly string[], opts: IpOptions = {}): Promise<string> {
  const ip = opts.ip ?? process.env.TSWG_IP ?? "ip";
  const full = opts.netns === undefined ? [...args] : ["-n", opts.netns, ...args];
  const command = [ip, ...full].join(" ");
  return new Promise((resolve, reject) => {
    execFile(ip, full, { timeout: TIMEOUT_MS, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout);
        return;
      }
      const e = err as NodeJS.ErrnoException & { killed?: boolean };
      let why: string;
      if (e.code === "ENOENT") why = `cannot run ${ip}: not found (is iproute2 installed?)`;
      else if (e.killed) why = `timed out after ${TIMEOUT_MS} ms`;
      else why = stderr.trim() || e.message;
      reject(new IpCommandError(command, why, stderr));
    });
  });
}

export class IpCommandError extends Error {
  constructor(
    readonly command: string,
    why: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${why}`);
    this.name = "IpCommandError";
  }
}

export async function setMtu(name: string, mtu: number, opts: IpOptions = {}): Promise<void> {
  checkInterfaceName(name);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new RangeError(`invalid MTU ${mtu}: must be an integer in 68..65535`);
  }
  await runIp(["link", "set", "dev", name, "mtu", String(mtu)], opts);
}

export async function setLinkUp(name: string, opts: IpOptions = {}): Promise<void> {
  checkInterfaceName(name);
  await runIp(["link", "set", "dev", name, "up"], opts);
}

export async function setLinkDown(name: string, opts: IpOptions = {}): Promise<void> {
  checkInterfaceName(name);
  await runIp(["link", "set", "dev", name, "down"], opts);
}

/** Adds an address such as "10.0.0.1/24" or "fd00::1/64" (as `wg-quick` does, with -4/-6). */
export async function addAddress(name: string, cidr: string, opts: IpOptions = {}): Promise<void> {
  checkInterfaceName(name);
  await runIp([familyFlag(cidr), "address", "add", cidr, "dev", name], opts);
}

/** Routes a prefix such as "10.1.0.0/16" or "::/0" into the interface. */
export async function addRoute(name: string, cidr: string, opts: RouteOptions = {}): Promise<void> {
  checkInterfaceName(name);
  const args = [familyFlag(cidr), "route", "add", cidr, "dev", name];
  if (opts.table !== undefined) args.push("table", String(opts.table));
  await runIp(args, opts);
}

export async function deleteLink(name: string, opts: IpOptions = {}): Promise<void> {
  checkInterfaceName(name);
  await runIp(["link", "delete", "dev", name], opts);
}

export async function linkExists(name: string, opts: IpOptions = {}): Promise<boolean> {
  checkInterfaceName(name);
  try {
    await runIp(["link", "show", "dev", name], opts);
    return true;
  } catch (err) {
    if (err instanceof IpCommandError && /does not exist|Cannot find device/u.test(err.stderr)) return false;
    throw err;
  }
}

function familyFlag(cidr: string): string {
  // Checked here so a typo is reported as such rather than as whatever ip makes of it.
  if (!/^[0-9A-Fa-f.:]+(\/\d{1,3})?$/u.test(cidr)) {
    throw new Error(`invalid address or prefix ${JSON.stringify(cidr)}: expected e.g. 10.0.0.1/24 or fd00::1/64`);
  }
  return cidr.includes(":") ? "-6" : "-4";
}
