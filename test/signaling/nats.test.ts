/**
 * NATS signaling against real nats-server processes on loopback: one server, then a three-node
 * cluster where clients sit on different nodes, one node is killed, and the clients carry on
 * through the others. Every server is started by this file and stopped by its PID.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NatsTransport, parseNatsUrls, type NatsTransportOptions } from "../../src/signaling/nats.js";
import { TrackedProcess } from "../helpers/proc.js";
import { sleep, waitFor } from "../helpers/wait.js";
import { channelNode, freePorts, generations, introduce, restart, type ChannelNode } from "./helpers.js";

function natsServerMissing(): string | null {
  try {
    execFileSync("nats-server", ["--version"], { stdio: "ignore" });
    return null;
  } catch {
    return "nats-server is not installed (Debian package nats-server)";
  }
}
const missing = natsServerMissing();
if (missing !== null) console.warn(`skipping NATS tests: ${missing}`);

let dir = "";
const procs = new Set<TrackedProcess>();
const channels: ChannelNode[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tswgt-nats-"));
});
afterEach(async () => {
  await Promise.all(channels.splice(0).map((n) => n.channel.close()));
});
afterAll(async () => {
  await Promise.all([...procs].map((p) => p.stop(1000)));
  if (dir !== "") rmSync(dir, { recursive: true, force: true });
});

interface NodeSpec {
  name: string;
  port: number;
  clusterPort?: number;
  routes?: number[];
}

async function startNats(spec: NodeSpec): Promise<TrackedProcess> {
  const lines = [`server_name: ${spec.name}`, `listen: 127.0.0.1:${spec.port}`];
  if (spec.clusterPort !== undefined) {
    lines.push(
      "cluster {",
      "  name: tswgt",
      `  listen: 127.0.0.1:${spec.clusterPort}`,
      `  routes: [${(spec.routes ?? []).map((p) => `nats-route://127.0.0.1:${p}`).join(", ")}]`,
      "}",
    );
  }
  const conf = join(dir, `${spec.name}.conf`);
  writeFileSync(conf, lines.join("\n") + "\n");
  const p = new TrackedProcess(["nats-server", "-c", conf]);
  procs.add(p);
  await p.waitForOutput("Server is ready", { timeoutMs: 10_000 });
  return p;
}

const fastNats: Partial<NatsTransportOptions> = { connectTimeoutMs: 5000, minBackoffMs: 100, maxBackoffMs: 500, reconnectTimeWaitMs: 200, sendWaitMs: 3000 };

function natsNode(servers: string, extra: Partial<NatsTransportOptions> = {}): ChannelNode {
  const n = channelNode(() => new NatsTransport({ servers, noRandomize: true, ...fastNats, ...extra }));
  channels.push(n);
  return n;
}

let gen = 0;
/**
 * Sends fresh messages both ways until each side has received one. NATS propagates a new
 * subscription to the other cluster members asynchronously, so the first ones may find no interest.
 */
async function exchange(a: ChannelNode, b: ChannelNode, timeoutMs = 8000): Promise<void> {
  const startA = a.got.length;
  const startB = b.got.length;
  await waitFor(
    async () => {
      const g = ++gen;
      if (b.got.length === startB) await a.channel.send(b.pub, restart(g));
      if (a.got.length === startA) await b.channel.send(a.pub, restart(g));
      await sleep(100);
      return a.got.length > startA && b.got.length > startB;
    },
    { what: "a message each way", timeoutMs, intervalMs: 0 },
  );
}

describe("the NATS client on this Node", () => {
  // @nats-io/nuid (a dependency of the NATS client) declares Node >= 22 while tswg supports 20;
  // it is what names every NATS inbox and subscription. The tests below prove the whole client
  // against real servers; this one shows the package itself works on the running Node.
  it(`@nats-io/nuid makes unique ids on Node ${process.versions.node}`, async () => {
    const require = createRequire(createRequire(import.meta.url).resolve("@nats-io/transport-node"));
    const { nuid } = (await import(pathToFileURL(require.resolve("@nats-io/nuid")).href)) as { nuid: { next(): string } };
    const ids = new Set(Array.from({ length: 10_000 }, () => nuid.next()));
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 100)) expect(id).toMatch(/^[0-9A-Za-z]{22}$/);
  });
});

describe.skipIf(missing !== null)("NATS signaling", () => {
  it("two clients on one server exchange sealed messages", async () => {
    const [port] = await freePorts(1);
    const server = await startNats({ name: "solo", port: port! });
    const url = `nats://127.0.0.1:${port}`;
    const a = natsNode(url);
    const b = natsNode(url);
    introduce(a, b);
    await Promise.all([a.channel.start(), b.channel.start()]);
    await a.channel.send(b.pub, restart(41));
    await waitFor(() => generations(b).includes(41), { what: "b to receive" });
    expect(Buffer.from(b.got[0]!.from).equals(Buffer.from(a.pub))).toBe(true);
    await exchange(a, b);
    // The server going away: the clients notice, and come back when it does.
    const downs: string[] = [];
    a.channel.on("disconnected", () => downs.push("a"));
    await server.stop(1000);
    await waitFor(() => downs.length === 1, { what: "a to notice the outage" });
    await startNats({ name: "solo", port: port! });
    await waitFor(() => a.channel.connected && b.channel.connected, { what: "reconnection", timeoutMs: 10_000 });
    await exchange(a, b);
  }, 30_000);

  it("a three-node cluster: clients on different nodes keep exchanging when one node is killed", async () => {
    const [p1, p2, p3, c1, c2, c3] = await freePorts(6);
    const clusterPorts = [c1!, c2!, c3!];
    const nodes = await Promise.all(
      [p1!, p2!, p3!].map((port, i) =>
        startNats({ name: `n${i + 1}`, port, clusterPort: clusterPorts[i], routes: clusterPorts.filter((_, j) => j !== i) }),
      ),
    );
    const url = (...ports: number[]) => ports.map((p) => `nats://127.0.0.1:${p}`).join(",");
    const a = natsNode(url(p1!, p2!, p3!)); // on n1
    const b = natsNode(url(p2!, p3!, p1!)); // on n2
    const c = natsNode(url(p3!, p1!, p2!)); // on n3
    a.channel.setPeers([b.pub, c.pub]);
    b.channel.setPeers([a.pub, c.pub]);
    c.channel.setPeers([a.pub, b.pub]);
    await Promise.all([a.channel.start(), b.channel.start(), c.channel.start()]);
    await exchange(a, b);
    await exchange(b, c);
    // Kill n1 (a's node) outright.
    const lost = new Promise<void>((resolve) => a.channel.on("disconnected", () => resolve()));
    nodes[0]!.signal("SIGKILL");
    await nodes[0]!.exited;
    await lost;
    await waitFor(() => a.channel.connected, { what: "a to fail over to another node", timeoutMs: 10_000 });
    await exchange(a, b);
    await exchange(a, c);
  }, 40_000);

  it("open() rejects while no server is reachable, then connects once one starts", async () => {
    const [port] = await freePorts(1);
    const a = natsNode(`nats://127.0.0.1:${port}`, { connectTimeoutMs: 300 });
    await expect(a.channel.start()).rejects.toThrow(/no NATS server .* reachable/);
    await startNats({ name: "late", port: port! });
    await waitFor(() => a.channel.connected, { what: "the late connection", timeoutMs: 10_000 });
  }, 20_000);
});

describe("NATS URLs", () => {
  it("parses lists, ports and credentials", () => {
    expect(parseNatsUrls("nats://a:4223, nats://b")).toEqual({ servers: ["a:4223", "b:4222"], tls: false });
    expect(parseNatsUrls("nats://u:p%40ss@h:1")).toEqual({ servers: ["h:1"], tls: false, user: "u", pass: "p@ss" });
    expect(parseNatsUrls("tls://tok@h")).toEqual({ servers: ["h:4222"], tls: true, token: "tok" });
  });

  it("refuses what it cannot use, saying why", () => {
    expect(() => parseNatsUrls("")).toThrow(/no NATS server/);
    expect(() => parseNatsUrls("http://h")).toThrow(/nats:\/\//);
    expect(() => parseNatsUrls("nats://h/path")).toThrow(/scheme:\/\/host/);
    expect(() => parseNatsUrls("nats://h,tls://g")).toThrow(/same scheme/);
    expect(() => new NatsTransport({ servers: "nats://h", subjectPrefix: "bad prefix" })).toThrow(/subject prefix/);
  });
});
