/**
 * Client and server of UoTLV/1 against each other on loopback, in process: lazy connecting,
 * reconnecting with back-off, cached name resolution, time limits, TLS.
 */
import net from "node:net";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { UotlvClient, type UotlvClientOptions } from "../../src/uotlv/client.js";
import { dialUotlv } from "../../src/uotlv/dial.js";
import { UotlvServer, type UpgradeInfo } from "../../src/uotlv/server.js";
import { parseTunnelUrl } from "../../src/uotlv/url.js";
import { waitFor } from "../helpers/wait.js";
import { makeTestPki, type TestPki } from "./helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A server on 127.0.0.1 that echoes every datagram; records the upgrade requests. */
async function echoServer(opts: { port?: number; idleTimeoutMs?: number } = {}) {
  const requests: UpgradeInfo[] = [];
  const server = new UotlvServer({
    idleTimeoutMs: opts.idleTimeoutMs,
    onConnection: (conn, info) => {
      requests.push(info);
      conn.start({ onDatagram: (d) => conn.send([d]) });
    },
  });
  const { port } = await server.listen(opts.port ?? 0, "127.0.0.1");
  cleanups.push(() => server.close());
  return { server, port, requests };
}

function client(opts: Partial<UotlvClientOptions> & { url: string }) {
  const got: string[] = [];
  const c = new UotlvClient({ reconnectDelaysMs: [50, 100, 200], onDatagram: (d) => got.push(Buffer.from(d).toString()), ...opts });
  cleanups.push(() => c.close());
  return { c, got };
}

const dg = (...texts: string[]): Buffer[] => texts.map((t) => Buffer.from(t));

describe("UoTLV/1 client and server", () => {
  it("connects only when the first datagram is sent, with the expected request", async () => {
    const { server, port, requests } = await echoServer();
    const { c, got } = client({ url: `http://127.0.0.1:${port}/proxyguard?x=1`, userAgent: "tswg/9.9.9" });
    await new Promise((r) => setTimeout(r, 100));
    expect(server.stats.accepted).toBe(0);
    expect(c.state).toBe("idle");

    c.send(dg("one", "two"));
    c.send(dg("three"));
    await waitFor(() => got.length === 3, { what: "three echoes", timeoutMs: 3000 });
    expect(got).toEqual(["one", "two", "three"]);
    expect(c.state).toBe("connected");
    expect(c.remote).toBe(`127.0.0.1:${port}`);
    expect(server.stats).toMatchObject({ accepted: 1, upgraded: 1 });
    const req = requests[0]!.request;
    expect(req.target).toBe("/proxyguard?x=1");
    expect(req.headers.get("host")).toBe(`127.0.0.1:${port}`);
    expect(req.headers.get("user-agent")).toBe("tswg/9.9.9");
    expect(c.stats).toMatchObject({ connects: 1, failures: 0, txDatagrams: 3, rxDatagrams: 3 });
  });

  it("sends tswg/<package version> as User-Agent by default", async () => {
    const { port, requests } = await echoServer();
    const { c, got } = client({ url: `http://127.0.0.1:${port}/` });
    c.send(dg("x"));
    await waitFor(() => got.length === 1, { what: "an echo" });
    expect(requests[0]!.request.headers.get("user-agent")).toMatch(/^tswg\/\d+\.\d+\.\d+/);
  });

  it("carries large and many datagrams in order", async () => {
    const { port } = await echoServer();
    const sizes: number[] = [];
    const c = new UotlvClient({ url: `http://127.0.0.1:${port}/`, onDatagram: (d) => sizes.push(d.length) });
    cleanups.push(() => c.close());
    c.send([new Uint8Array(1)]);
    await waitFor(() => sizes.length === 1, { what: "the first echo" });
    const want = [1, ...Array.from({ length: 398 }, (_, i) => 1 + ((i * 7919) % 65534)), 65534, 65533];
    for (let i = 1; i < want.length; i += 40) {
      c.send(want.slice(i, i + 40).map((n) => new Uint8Array(n)));
      await waitFor(() => sizes.length === Math.min(i + 40, want.length), { what: `echoes up to ${i + 40}`, timeoutMs: 5000 });
      // (40 datagrams of up to 64 KiB stay under the connection's 4 MiB buffer cap)
    }
    expect(sizes).toEqual(want);
    expect(sizes).toContain(65534);
    expect(c.stats.txDropped).toBe(0);
  });

  it("reconnects after the server drops the connection, and keeps what was sent meanwhile", async () => {
    const { server, port } = await echoServer();
    const { c, got } = client({ url: `http://127.0.0.1:${port}/` });
    c.send(dg("before"));
    await waitFor(() => got.length === 1, { what: "the first echo" });
    for (const conn of server.connections) conn.close("dropped by the test");
    await waitFor(() => c.state === "waiting" || c.state === "idle", { what: "the client to notice" });
    c.send(dg("during"));
    await waitFor(() => got.length === 2, { what: "the echo after reconnecting", timeoutMs: 3000 });
    expect(got).toEqual(["before", "during"]);
    expect(c.stats.connects).toBe(2);
  });

  it("keeps retrying with back-off while the server is away, and comes back", async () => {
    const { server, port } = await echoServer();
    const { c, got } = client({ url: `http://127.0.0.1:${port}/`, reconnectDelaysMs: [30, 60, 90] });
    c.send(dg("a"));
    await waitFor(() => got.length === 1, { what: "the first echo" });
    await server.close();
    await waitFor(() => c.state !== "connected", { what: "the client to notice" });
    c.send(dg("b"));
    await waitFor(() => c.stats.failures >= 3, { what: "three failed attempts", timeoutMs: 3000 });
    // The server returns on the same port; the queued datagram arrives.
    await echoServer({ port });
    await waitFor(() => got.length === 2, { what: "the echo after the server returned", timeoutMs: 3000 });
    expect(got[1]).toBe("b");
    expect(c.state).toBe("connected");
  });

  it("resolves the host name once and keeps the addresses; peer IPs skip resolution", async () => {
    const { server, port } = await echoServer();
    const lookups: string[] = [];
    const lookup = async (h: string): Promise<string[]> => {
      lookups.push(h);
      return ["127.0.0.1"];
    };
    const { c, got } = client({ url: `http://tunnel.test:${port}/`, lookup });
    c.send(dg("1"));
    await waitFor(() => got.length === 1, { what: "an echo" });
    for (const conn of server.connections) conn.close();
    await waitFor(() => c.state !== "connected", { what: "the drop" });
    c.send(dg("2"));
    await waitFor(() => got.length === 2, { what: "an echo after reconnecting" });
    expect(lookups).toEqual(["tunnel.test"]);
    expect(c.resolvedAddresses).toEqual(["127.0.0.1"]);

    const failing = async (): Promise<string[]> => {
      throw new Error("must not be called");
    };
    const second = client({ url: `http://tunnel.test:${port}/`, lookup: failing, peerIps: ["127.0.0.9", "127.0.0.1"] });
    second.c.send(dg("3"));
    await waitFor(() => second.got.length === 1, { what: "an echo through the second peer IP" });
    expect(() => new UotlvClient({ url: "http://h/", peerIps: ["not-an-ip"], onDatagram: () => {} })).toThrow(/not an IP address/);
  });

  it("counts a failed name resolution as a failed attempt and tries again", async () => {
    const { port } = await echoServer();
    let calls = 0;
    const lookup = async (): Promise<string[]> => {
      if (++calls < 3) throw Object.assign(new Error("no"), { code: "EAI_AGAIN" });
      return ["127.0.0.1"];
    };
    const disconnects: string[] = [];
    const { c, got } = client({ url: `http://flaky.test:${port}/`, lookup, onDisconnect: (r) => disconnects.push(r) });
    c.send(dg("x"));
    await waitFor(() => got.length === 1, { what: "an echo after two failed lookups", timeoutMs: 3000 });
    expect(calls).toBe(3);
    expect(disconnects[0]).toMatch(/cannot resolve flaky\.test: EAI_AGAIN/);
  });

  it("tears an idle connection down on either side", async () => {
    const { server, port } = await echoServer({ idleTimeoutMs: 300 });
    const { c, got } = client({ url: `http://127.0.0.1:${port}/` });
    const reasons: string[] = [];
    const c2 = new UotlvClient({ url: `http://127.0.0.1:${port}/`, idleTimeoutMs: 200, onDatagram: () => {}, onDisconnect: (r) => reasons.push(r) });
    cleanups.push(() => c2.close());
    c.send(dg("x"));
    await waitFor(() => got.length === 1, { what: "an echo" });
    await waitFor(() => server.connections.size === 0 && c.state !== "connected", { what: "the server to drop the idle connection", timeoutMs: 2000 });
    // A client whose server never sends: it gives up on its own.
    const silent = new UotlvServer({ onConnection: (conn) => conn.start({ onDatagram: () => {} }) });
    const s = await silent.listen(0, "127.0.0.1");
    cleanups.push(() => silent.close());
    const c3 = new UotlvClient({ url: `http://127.0.0.1:${s.port}/`, idleTimeoutMs: 200, onDatagram: () => {}, onDisconnect: (r) => reasons.push(r) });
    cleanups.push(() => c3.close());
    c3.send(dg("x"));
    await waitFor(() => reasons.some((r) => /nothing received for/.test(r)), { what: "the client's idle teardown", timeoutMs: 2000 });
  });

  it("gives up on a server that never answers the upgrade, and on one that refuses it", async () => {
    const mute = net.createServer((s) => s.resume()); // reads, never answers
    await new Promise<void>((r) => mute.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => mute.close(() => r())));
    const mutePort = (mute.address() as net.AddressInfo).port;
    const t0 = performance.now();
    await expect(dialUotlv({ url: parseTunnelUrl(`http://127.0.0.1:${mutePort}/`), address: "127.0.0.1", timeoutMs: 300 })).rejects.toThrow(
      /HTTP upgrade at 127\.0\.0\.1:\d+: timed out after 0\.3 s/,
    );
    expect(performance.now() - t0).toBeLessThan(2000);

    const refusing = net.createServer((s) => s.resume().end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
    await new Promise<void>((r) => refusing.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => refusing.close(() => r())));
    const rp = (refusing.address() as net.AddressInfo).port;
    await expect(dialUotlv({ url: parseTunnelUrl(`http://127.0.0.1:${rp}/`), address: "127.0.0.1" })).rejects.toThrow(/404 Not Found instead of 101/);

    const closed = await (async () => {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
      const p = (s.address() as net.AddressInfo).port;
      await new Promise<void>((r) => s.close(() => r()));
      return p;
    })();
    await expect(dialUotlv({ url: parseTunnelUrl(`http://127.0.0.1:${closed}/`), address: "127.0.0.1" })).rejects.toThrow(/TCP connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  it("uses the given TCP source port", async () => {
    const { port, requests } = await echoServer();
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const src = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { c, got } = client({ url: `http://127.0.0.1:${port}/`, localPort: src });
    c.send(dg("x"));
    await waitFor(() => got.length === 1, { what: "an echo" });
    expect(requests[0]!.remote).toBe(`127.0.0.1:${src}`);
  });

  it("drops what it cannot send once closed", async () => {
    const { c } = client({ url: "http://127.0.0.1:9/" });
    await c.close();
    c.send(dg("x", "y"));
    expect(c.stats.txDropped).toBe(2);
    expect(c.state).toBe("closed");
  });
});

describe("UoTLV/1 over TLS", () => {
  let pki: TestPki;
  let port: number;
  let tlsServer: tls.Server;
  const seen: { alpn: string[]; version: string | null }[] = [];

  beforeAll(async () => {
    pki = makeTestPki({ dns: ["vpn.test"], ips: ["127.0.0.1"] });
    const uotlv = new UotlvServer({ onConnection: (conn) => conn.start({ onDatagram: (d) => conn.send([d]) }) });
    tlsServer = tls.createServer({
      cert: pki.cert,
      key: pki.key,
      ALPNCallback: ({ protocols }) => {
        seen.push({ alpn: protocols, version: null });
        return protocols.includes("http/1.1") ? "http/1.1" : undefined;
      },
    });
    tlsServer.on("secureConnection", (s) => {
      seen[seen.length - 1]!.version = s.getProtocol();
      uotlv.handle(s);
    });
    tlsServer.on("tlsClientError", () => {});
    await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", () => r()));
    port = (tlsServer.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => tlsServer?.close(() => r()));
    pki?.remove();
  });

  it("connects with TLS 1.3, offering only http/1.1, trusting the given CA", async () => {
    const got: string[] = [];
    const c = new UotlvClient({ url: `https://vpn.test:${port}/pg`, peerIps: ["127.0.0.1"], ca: pki.ca, onDatagram: (d) => got.push(Buffer.from(d).toString()) });
    cleanups.push(() => c.close());
    c.send(dg("over tls"));
    await waitFor(() => got.length === 1, { what: "an echo over TLS" });
    expect(got).toEqual(["over tls"]);
    expect(seen.at(-1)).toEqual({ alpn: ["http/1.1"], version: "TLSv1.3" });
  });

  it("checks the certificate against the URL's host, for names and addresses", async () => {
    const conn = await dialUotlv({ url: parseTunnelUrl(`https://127.0.0.1:${port}/`), address: "127.0.0.1", ca: pki.ca });
    expect(conn.remotePort).toBe(port);
    conn.close();
    await expect(dialUotlv({ url: parseTunnelUrl(`https://other.test:${port}/`), address: "127.0.0.1", ca: pki.ca })).rejects.toThrow(
      /TLS handshake with 127\.0\.0\.1:\d+: .*(altnames|other\.test)/,
    );
  });

  it("refuses a server the system does not trust", async () => {
    await expect(dialUotlv({ url: parseTunnelUrl(`https://vpn.test:${port}/`), address: "127.0.0.1" })).rejects.toThrow(/TLS handshake .*(certificate|self.signed|issuer)/i);
  });

  it("refuses a server that offers only TLS 1.2", async () => {
    const old = tls.createServer({ cert: pki.cert, key: pki.key, maxVersion: "TLSv1.2" });
    old.on("tlsClientError", () => {});
    await new Promise<void>((r) => old.listen(0, "127.0.0.1", () => r()));
    cleanups.push(() => new Promise<void>((r) => old.close(() => r())));
    const p = (old.address() as net.AddressInfo).port;
    await expect(dialUotlv({ url: parseTunnelUrl(`https://vpn.test:${p}/`), address: "127.0.0.1", ca: pki.ca })).rejects.toThrow(/TLS handshake .*(version|protocol)/i);
  });
});
