/**
 * coturn as the STUN/TURN server of a topology: what STUN reports behind each NAT type, over
 * UDP, TCP and TLS; a TURN allocation relaying to a peer; and its life cycle.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  coturnUnavailableReason,
  isAlive,
  startCoturn,
  startReflector,
  stunMappedAddresses,
  stunMappedAddressOverStream,
  Topology,
  waitFor,
  withTopology,
  type Coturn,
  type Nat,
  type NetNode,
} from "../../src/testbed/index.js";

const reason = await coturnUnavailableReason();
if (reason !== null) console.warn(`skipping coturn tests: ${reason}`);

describe.skipIf(reason !== null)("coturn in a topology", () => {
  let net: Topology;
  let natE: Nat;
  let natS: Nat;
  let e: NetNode;
  let s: NetNode;
  let p: NetNode;
  let t1: Coturn;
  let t2: Coturn;

  beforeAll(async () => {
    net = await Topology.create("turn");
    const inet = await net.segment("inet", "198.51.100.0/24");
    natE = await net.nat("natE", { wan: inet, lan: "10.1.0.0/24", mapping: "endpoint-independent" });
    natS = await net.nat("natS", { wan: inet, lan: "10.2.0.0/24", mapping: "symmetric" });
    e = await net.host("e", { behind: natE });
    s = await net.host("s", { behind: natS });
    p = await net.host("p", { on: inet });
    const [h1, h2] = [await net.host("t1", { on: inet }), await net.host("t2", { on: inet })];
    [t1, t2] = await Promise.all([
      startCoturn(h1, { relayPorts: { min: 50000, max: 50999 } }),
      startCoturn(h2, { tls: true, username: "alice", password: "wonder-land" }),
    ]);
    // coturn's echo peer, the far end of relayed traffic.
    p.spawn(["turnutils_peer", "-L", p.ip, "-p", "3480"]);
    await waitFor(async () => (await p.exec(["ss", "-Hlnu", "sport = :3480"])).stdout.includes(`${p.ip}:3480`), { what: "turnutils_peer to listen" });
  });
  afterAll(async () => {
    await net?.cleanup();
  });

  it("runs with its generated configuration, listening on its node's address", () => {
    expect(t1.ip).toBe(t1.node.ip);
    expect(t1.stunUrl).toBe(`stun:${t1.ip}:3478`);
    expect(t1.turnUrl("tcp")).toBe(`turn:${t1.ip}:3478?transport=tcp`);
    expect(() => t1.turnsUrl).toThrow(/without TLS/);
    expect(t2.turnsUrl).toBe(`turns:${t2.ip}:5349?transport=tcp`);
    const conf = readFileSync(join(t1.dir, "turnserver.conf"), "utf8");
    expect(conf).toContain(`listening-ip=${t1.ip}\n`);
    expect(conf).toContain("min-port=50000\n");
    expect(conf).toContain("user=tswg:tswg-test-secret\n");
    expect(t1.process.running).toBe(true);
  });

  it("STUN behind an endpoint-independent NAT: both servers see the NAT's address and one port", async () => {
    const r = await stunMappedAddresses(e, [
      { ip: t1.ip, port: 3478 },
      { ip: t2.ip, port: 3478 },
    ]);
    const expected = { family: 4, address: natE.wanIp, port: r.localPort };
    expect(r.addresses).toEqual([expected, expected]);
  });

  it("STUN behind a symmetric NAT: the two servers see different ports", async () => {
    const r = await stunMappedAddresses(s, [
      { ip: t1.ip, port: 3478 },
      { ip: t2.ip, port: 3478 },
    ]);
    const [a, b] = r.addresses;
    expect(a?.address).toBe(natS.wanIp);
    expect(b?.address).toBe(natS.wanIp);
    expect(a?.port).not.toBe(b?.port);
  });

  /** coturn's TURN test client via `t` over UDP: allocates, relays three messages to the echo peer and back. */
  function turnClientArgv(t: Coturn, password: string): string[] {
    return ["turnutils_uclient", "-p", String(t.port), "-u", t.username, "-w", password, "-e", p.ip, "-r", "3480", "-c", "-n", "3", "-z", "5", "-m", "1", t.ip];
  }

  it("TURN over UDP relays from behind a symmetric NAT to a peer; a wrong password is refused", async () => {
    const [ok, wrong] = await Promise.all([
      s.exec(turnClientArgv(t1, t1.password), { timeoutMs: 20_000 }),
      e.exec(turnClientArgv(t1, "not-it"), { check: false, timeoutMs: 20_000 }),
    ]);
    expect(ok.stdout).toMatch(/tot_send_msgs=3, tot_recv_msgs=3/);
    expect(ok.stdout).toMatch(/Total lost packets 0 /);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout + wrong.stderr).toMatch(/Cannot complete Allocation/);
  });

  it("answers STUN over TCP, and over TLS with a certificate clients can pin", async () => {
    const tcp = await stunMappedAddressOverStream(e, { ip: t1.ip, port: t1.port });
    expect(tcp.address).toEqual({ family: 4, address: natE.wanIp, port: tcp.localPort });
    expect(tcp.tlsVersion).toBeNull();
    const tls = await stunMappedAddressOverStream(s, { ip: t2.ip, port: t2.tlsPort! }, { tls: true, ca: t2.certPem });
    expect(tls.address.address).toBe(natS.wanIp);
    expect(tls.tlsVersion).toMatch(/^TLSv1\.[23]$/);
    const cert = new X509Certificate(t2.certPem!);
    expect(cert.subjectAltName).toBe(`IP Address:${t2.ip}`);
    // Verification is on by default: a self-signed certificate is refused unless pinned.
    await expect(stunMappedAddressOverStream(e, { ip: t2.ip, port: t2.tlsPort! }, { tls: true })).rejects.toThrow(/STUN over TLS to .*self-signed certificate/);
  });
});

describe.skipIf(reason !== null)("coturn life cycle", () => {
  it("stops by PID, and its files go with the topology", async () => {
    let dir = "";
    await withTopology("turnlc", async (net) => {
      const inet = await net.segment("inet", "198.51.100.0/24");
      const t = await startCoturn(await net.host("t", { on: inet }));
      dir = t.dir;
      expect(isAlive(t.pid)).toBe(true);
      await t.stop();
      expect(isAlive(t.pid)).toBe(false);
      expect((await t.node.exec(["ss", "-Hlnu"])).stdout).not.toContain(`${t.ip}:3478`);
      expect(existsSync(dir)).toBe(true);
    });
    expect(dir).not.toBe("");
    expect(existsSync(dir)).toBe(false);
  });

  it("fails clearly when it cannot listen, quoting coturn", async () => {
    await withTopology("turnbusy", async (net) => {
      const inet = await net.segment("inet", "198.51.100.0/24");
      const t = await net.host("t", { on: inet });
      await startReflector(t, { port: 3478 }); // takes the UDP port first
      const err = await startCoturn(t, { startTimeoutMs: 2000 }).catch((x: unknown) => x as Error);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/waiting for coturn on t to listen on udp 198\.51\.100\.1:3478/);
      expect((err as Error).message).toMatch(/Address already in use/);
      // The failed server was stopped, not left running.
      expect(net.bed.processes.filter((x) => x.argv.includes("turnserver") && x.running)).toEqual([]);
    });
  });
});
