// A small network-namespace bed for the benchmark: hosts joined by a veth pair, commands and
// background processes inside them, and cleanup on exit, on signals and on failure.
// (The test suite has its own, richer helper in TypeScript; the benchmark is plain JavaScript
// so that it runs on the built output without a compiler.)
import { execFile, spawn } from "node:child_process";

const PREFIX = `tswgt-bench${process.pid.toString(36)}`;

/** Runs a program; resolves with its output, rejects on a non-zero exit unless `check` is false. */
export function run(argv, { check = true, timeoutMs = 60_000, env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { timeout: timeoutMs, encoding: "utf8", maxBuffer: 64 << 20, env: env ? { ...process.env, ...env } : process.env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      if (check && code !== 0) reject(new Error(`${argv.join(" ")} failed (${code}): ${stderr.trim() || err?.message}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** A background process; output is kept so callers can wait for a line. */
export class Proc {
  constructor(argv, env) {
    this.argv = argv;
    this.output = "";
    this.child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...(env ?? {}) } });
    this.pid = this.child.pid;
    this.listeners = new Set();
    const onData = (d) => {
      this.output += d.toString();
      if (this.output.length > 1 << 20) this.output = this.output.slice(-(1 << 19));
      for (const l of this.listeners) l();
    };
    this.child.stdout.on("data", onData);
    this.child.stderr.on("data", onData);
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
    this.done = false;
    void this.exited.then(() => {
      this.done = true;
      for (const l of this.listeners) l();
    });
  }

  /** Resolves once `pattern` appears in the output; rejects on exit or timeout. */
  waitFor(pattern, timeoutMs = 20_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = typeof pattern === "string" ? this.output.includes(pattern) : pattern.test(this.output);
        if (m) {
          finish();
          resolve(this.output);
        } else if (this.done) {
          finish();
          reject(new Error(`${this.argv.join(" ")} exited before printing ${pattern}:\n${this.output.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${pattern} from ${this.argv.join(" ")}:\n${this.output.slice(-2000)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  async stop(graceMs = 3000) {
    if (this.done) return;
    try {
      process.kill(this.pid, "SIGTERM");
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }, graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export class Host {
  constructor(bed, label) {
    this.bed = bed;
    this.label = label;
    this.ns = `${PREFIX}-${label}`;
  }
  exec(argv, opts) {
    return run(["ip", "netns", "exec", this.ns, ...argv], opts);
  }
  ip(args, opts) {
    return run(["ip", "-n", this.ns, ...args], opts);
  }
  /** Starts a tracked background process inside the namespace (`ip netns exec` execs it: same PID). */
  spawn(argv, env) {
    const p = new Proc(["ip", "netns", "exec", this.ns, ...argv], env);
    this.bed.procs.add(p);
    return p;
  }
}

export class Bed {
  constructor() {
    this.hosts = [];
    this.procs = new Set();
    this.cleaned = false;
    const onSignal = (sig) => {
      void this.cleanup().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }

  async host(label) {
    const h = new Host(this, label);
    await run(["ip", "netns", "delete", h.ns], { check: false });
    await run(["ip", "netns", "add", h.ns]);
    this.hosts.push(h);
    await h.ip(["link", "set", "lo", "up"]);
    return h;
  }

  /** A veth pair between two hosts with the given IPv4 addresses (with prefix). */
  async link(a, b, addrA, addrB) {
    const ifA = `v-${b.label}`.slice(0, 15);
    const ifB = `v-${a.label}`.slice(0, 15);
    await run(["ip", "link", "add", "tswgtbenchtmp", "netns", a.ns, "type", "veth", "peer", "name", ifB, "netns", b.ns]);
    await a.ip(["link", "set", "tswgtbenchtmp", "name", ifA]);
    await a.ip(["addr", "add", addrA, "dev", ifA]);
    await b.ip(["addr", "add", addrB, "dev", ifB]);
    await a.ip(["link", "set", ifA, "up"]);
    await b.ip(["link", "set", ifB, "up"]);
  }

  async cleanup() {
    if (this.cleaned) return;
    this.cleaned = true;
    await Promise.all([...this.procs].map((p) => p.stop(2000).catch(() => {})));
    for (const h of this.hosts) await run(["ip", "netns", "delete", h.ns], { check: false });
  }
}
