/**
 * SO_MARK really reaches the wire: `tswg up` with an FwMark, inside a network namespace of the
 * test's own, sends its handshake initiations; an nftables rule there counts the UDP packets
 * that carry the mark (and another the ones that do not). Both data paths: native sockets set
 * the option themselves, node:dgram sockets get it through the addon on their descriptor.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBackend, keyToBase64 } from "../../src/crypto/index.js";
import { loadNative } from "../../src/native/load.js";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";

const TSWG = resolve(import.meta.dirname, "../../bin/tswg.js");
const MARK = 0x1234;
const PORT = 51999;
const skip = (await netnsUnavailableReason()) ?? (loadNative().addon === null ? "native addon not built" : null);

async function counters(host: Host): Promise<{ marked: number; unmarked: number }> {
  const out = (await host.exec(["nft", "list", "chain", "inet", "tswgtmark", "out"])).stdout;
  const count = (tag: string): number => Number(new RegExp(`counter packets (\\d+) bytes \\d+ comment "${tag}"`).exec(out)?.[1] ?? NaN);
  return { marked: count("marked"), unmarked: count("unmarked") };
}

describe.skipIf(skip !== null).each(["native", "portable"] as const)("FwMark on the %s data path", (dataPath) => {
  let bed: TestBed;
  let host: Host;

  beforeAll(async () => {
    bed = await TestBed.create("mark");
    host = await bed.host("m");
    // Somewhere for the initiations to go: a veth pair with nobody at 10.55.0.2 swallows them.
    await host.ip(["link", "add", "mk0", "type", "veth", "peer", "name", "mk1"]);
    await host.ip(["addr", "add", "10.55.0.1/24", "dev", "mk0"]);
    await host.ip(["link", "set", "mk0", "up"]);
    await host.ip(["link", "set", "mk1", "up"]);
    const rules = [
      "add table inet tswgtmark",
      "add chain inet tswgtmark out { type filter hook output priority 0 ; }",
      `add rule inet tswgtmark out udp dport ${PORT} meta mark ${MARK} counter comment "marked"`,
      `add rule inet tswgtmark out udp dport ${PORT} meta mark != ${MARK} counter comment "unmarked"`,
    ];
    for (const r of rules) await host.exec(["nft", ...r.split(" ").filter((x) => x !== "")]);
  });

  afterAll(async () => {
    await bed?.cleanup();
  });

  it("every datagram to the peer carries the mark", async () => {
    const crypto = getBackend("node");
    const dir = bed.tempDir("conf");
    const ifname = bed.ifname("mk");
    const conf = join(dir, `${ifname}.conf`);
    writeFileSync(
      conf,
      [
        "[Interface]",
        `PrivateKey = ${keyToBase64(crypto.generatePrivateKey())}`,
        `FwMark = ${MARK}`,
        "Address = 10.56.0.1/24",
        "",
        "[Peer]",
        `PublicKey = ${keyToBase64(crypto.publicKey(crypto.generatePrivateKey()))}`,
        "AllowedIPs = 10.56.0.2/32",
        `Endpoint = 10.55.0.2:${PORT}`,
        "PersistentKeepalive = 1",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const proc = host.spawn(["node", TSWG, "up", conf], { env: { TSWG_RUN_DIR: dir, TSWG_DATAPATH: dataPath } });
    await proc.waitForOutput(`interface ${ifname} is up`, { timeoutMs: 20_000 });
    expect(await proc.waitForOutput(/data path: \w+/)).toBe(`data path: ${dataPath}`);
    // Persistent keepalive starts a handshake at once; more follow.
    await waitFor(async () => (await counters(host)).marked >= 1, { timeoutMs: 10_000, what: "a marked datagram" });
    // Data packets too: traffic into the tunnel makes the device try again.
    await host.exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.56.0.2"], { check: false });
    const c = await counters(host);
    expect(c.marked).toBeGreaterThanOrEqual(1);
    expect(c.unmarked).toBe(0);
    await proc.stop();
  }, 60_000);
});
