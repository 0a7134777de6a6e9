/**
 * `tswg signal`: argument checking, a foreground run that serves clients and stops cleanly (in
 * process, stopped through an AbortSignal), TLS from files, and — when the build exists — the real
 * command stopped by SIGTERM.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/cli/args.js";
import { parseSignalArgs, runSignal } from "../../src/cli/signal.js";
import { WebSocketTransport } from "../../src/signaling/ws-client.js";
import { TrackedProcess } from "../helpers/proc.js";
import { waitFor } from "../helpers/wait.js";
import { backend, channelNode, freePorts, generations, introduce, makeTestPki, restart } from "./helpers.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("tswg signal arguments", () => {
  it("accepts the documented forms", () => {
    expect(parseSignalArgs(["--listen", "127.0.0.1:8443"])).toMatchObject({ host: "127.0.0.1", port: 8443, logLevel: "info" });
    expect(parseSignalArgs(["--listen=:9000", "--log-level", "debug"])).toMatchObject({ host: undefined, port: 9000, logLevel: "debug" });
    expect(parseSignalArgs(["--listen", "[::1]:1", "--tls-cert", "c", "--tls-key", "k"])).toMatchObject({ host: "::1", tlsCert: "c", tlsKey: "k" });
  });

  it("refuses bad ones with usage errors that say what is wrong", () => {
    const cases: [string[], RegExp][] = [
      [[], /--listen ADDR:PORT is required/],
      [["--listen", "8443"], /not ADDR:PORT/],
      [["--listen", "1.2.3.4:70000"], /not ADDR:PORT/],
      [["--listen", "[nope]:1"], /not an IPv6 address/],
      [["--listen", ":1", "--tls-cert", "c"], /go together/],
      [["--listen", ":1", "--log-level", "loud"], /unknown log level/],
      [["--listen", ":1", "--frobnicate", "x"], /unknown option --frobnicate/],
      [["--listen"], /needs a value/],
      [["--listen", ":1", "--listen", ":2"], /given twice/],
      [["stray"], /unexpected argument/],
    ];
    for (const [args, re] of cases) {
      expect(() => parseSignalArgs(args), args.join(" ")).toThrow(UsageError);
      expect(() => parseSignalArgs(args), args.join(" ")).toThrow(re);
    }
  });
});

async function startInProcess(args: string[]) {
  const stop = new AbortController();
  const lines: string[] = [];
  let url = "";
  const done = runSignal(args, { signal: stop.signal, onListening: (u) => (url = u), logSink: (l) => lines.push(l) });
  done.catch(() => {});
  await waitFor(() => url !== "" || lines.length > 0, { what: "the server to start" });
  return { stop, lines, url: () => url, done };
}

describe("tswg signal (in process)", () => {
  it("serves two clients and stops when asked", async () => {
    const srv = await startInProcess(["--listen", "127.0.0.1:0", "--log-level", "debug"]);
    cleanups.push(() => srv.stop.abort());
    expect(srv.url()).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/$/);
    const a = channelNode((privateKey) => new WebSocketTransport({ url: srv.url(), privateKey }));
    const b = channelNode((privateKey) => new WebSocketTransport({ url: srv.url(), privateKey }));
    cleanups.push(() => a.channel.close(), () => b.channel.close());
    introduce(a, b);
    await Promise.all([a.channel.start(), b.channel.start()]);
    await a.channel.send(b.pub, restart(3));
    await waitFor(() => generations(b).includes(3), { what: "delivery" });
    expect(srv.lines.some((l) => /debug: signaling: #\d+ connected from 127\.0\.0\.1/.test(l))).toBe(true);
    expect(srv.lines.some((l) => / subscribed as /.test(l))).toBe(true);
    const lost = new Promise<void>((resolve) => a.channel.on("disconnected", () => resolve()));
    srv.stop.abort();
    expect(await srv.done).toBe(0);
    await lost;
    expect(srv.lines.some((l) => /stopping/.test(l))).toBe(true);
  });

  it("serves wss:// from certificate files; missing files are clear errors", async () => {
    const pki = makeTestPki();
    cleanups.push(() => pki.remove());
    const srv = await startInProcess(["--listen", "127.0.0.1:0", "--tls-cert", pki.certFile, "--tls-key", pki.keyFile]);
    cleanups.push(() => srv.stop.abort());
    expect(srv.url()).toMatch(/^wss:\/\//);
    const priv = backend.generatePrivateKey();
    const t = new WebSocketTransport({ url: srv.url(), privateKey: priv, ca: pki.ca });
    cleanups.push(() => t.close());
    await t.open(backend.publicKey(priv), () => {});
    expect(t.connected).toBe(true);
    await expect(runSignal(["--listen", "127.0.0.1:0", "--tls-cert", join(pki.dir, "nope.pem"), "--tls-key", pki.keyFile])).rejects.toThrow(/--tls-cert .*nope\.pem: ENOENT/);
  });

  it("a port in use is a clear error", async () => {
    const srv = await startInProcess(["--listen", "127.0.0.1:0"]);
    cleanups.push(() => srv.stop.abort());
    const port = new URL(srv.url()).port;
    await expect(runSignal(["--listen", `127.0.0.1:${port}`], { logSink: () => {} })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  });
});

const BIN = join(import.meta.dirname, "../../bin/tswg.js");
const built = existsSync(join(import.meta.dirname, "../../dist/cli/signal.js"));

describe.skipIf(!built)("tswg signal (the command)", () => {
  it("runs in the foreground and exits 0 on SIGTERM", async () => {
    const [port] = await freePorts(1);
    const p = new TrackedProcess(["node", BIN, "signal", "--listen", `127.0.0.1:${port}`]);
    cleanups.push(() => p.stop());
    await p.waitForOutput(/listening on ws:\/\/127\.0\.0\.1:\d+\//);
    const priv = backend.generatePrivateKey();
    const t = new WebSocketTransport({ url: `ws://127.0.0.1:${port}/`, privateKey: priv });
    cleanups.push(() => t.close());
    await t.open(backend.publicKey(priv), () => {});
    p.signal("SIGTERM");
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(p.stderr).toMatch(/SIGTERM: stopping/);
    // Said once, not once by the command and again by the server.
    expect(p.stderr.match(/listening on/g)).toHaveLength(1);
  });
});
