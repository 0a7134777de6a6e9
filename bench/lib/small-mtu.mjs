// The small-MTU path row of `npm run bench`: tunnels (MTU 1420, nothing tuned) between hosts
// sa and sb across a router sr whose link to sb has MTU 1280, outer IPv6, one TCP stream each;
// tswg and wireguard-go side by side in the same run. `compare` adds tswg ends run from other
// builds (label=path/to/bin/tswg.js), to tell a change's effect from the machine's drift.
import { run } from "./netns.mjs";
import { iperf } from "./measure.mjs";
import { join } from "node:path";
import { keyPair, REPO, startEnd } from "./tunnels.mjs";

const LINK_MTU = 1280;

/** A veth pair between two bench hosts with IPv6 addresses and an MTU. */
async function link6(a, b, addrA, addrB, mtu) {
  const ifA = `v-${b.label}`.slice(0, 15);
  const ifB = `v-${a.label}`.slice(0, 15);
  await run(["ip", "link", "add", "tswgtbenchtmp", "netns", a.ns, "type", "veth", "peer", "name", ifB, "netns", b.ns]);
  await a.ip(["link", "set", "tswgtbenchtmp", "name", ifA]);
  for (const [h, ifn, addr] of [[a, ifA, addrA], [b, ifB, addrB]]) {
    await h.ip(["link", "set", ifn, "mtu", String(mtu)]);
    await h.ip(["-6", "addr", "add", addr, "dev", ifn, "nodad"]);
    await h.ip(["link", "set", ifn, "up"]);
  }
}

/**
 * Runs the row: `reps` rounds of `seconds` of one TCP stream through each tunnel in turn.
 * Returns [{ id, label, impl, pathMtu, gbps: { median, min, max, n }, runs }].
 */
export async function smallMtuBench(bed, { reps, seconds, compare = [], summary, log = console.error }) {
  const a = await bed.host("sa");
  const r = await bed.host("sr");
  const b = await bed.host("sb");
  await r.exec(["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
  await link6(a, r, "fd91::1/64", "fd91::fe/64", 1500);
  await link6(r, b, "fd92::fe/64", "fd92::1/64", LINK_MTU);
  await a.ip(["-6", "route", "add", "fd92::/64", "via", "fd91::fe"]);
  await b.ip(["-6", "route", "add", "fd91::/64", "via", "fd92::fe"]);
  const configs = [
    { id: "wggo", label: "wireguard-go <-> wireguard-go", impl: "wireguard-go" },
    { id: "tswg-native", label: "tswg native <-> tswg native", impl: "tswg-native" },
    { id: "tswg-portable", label: "tswg portable <-> tswg portable", impl: "tswg-portable" },
    ...compare.map(([name, bin]) => ({ id: `portable-${name}`, label: `tswg portable (${name}) <-> same`, impl: "tswg-portable", bin })),
  ];
  const tunnels = [];
  let n = 0;
  for (const c of configs) {
    n++;
    const ka = await keyPair();
    const kb = await keyPair();
    const net = 180 + n;
    const port = 52000 + 2 * n;
    const tag = c.impl === "wireguard-go" ? "g" : "t";
    const common = { impl: c.impl, bin: c.bin };
    const endA = await startEnd({
      ...common, host: a, ifname: `m${n}${tag}-a`, keys: ka, peerPub: kb.pub, listenPort: port,
      address: `10.${net}.0.1/24`, peerAllowed: `10.${net}.0.2/32`, peerEndpoint: `[fd92::1]:${port + 1}`,
    });
    const endB = await startEnd({
      ...common, host: b, ifname: `m${n}${tag}-b`, keys: kb, peerPub: ka.pub, listenPort: port + 1,
      address: `10.${net}.0.2/24`, peerAllowed: `10.${net}.0.1/32`, peerEndpoint: `[fd91::1]:${port}`,
    });
    const serverIp = `10.${net}.0.2`;
    const deadline = Date.now() + 15_000;
    while ((await a.exec(["ping", "-c", "1", "-W", "1", serverIp], { check: false })).code !== 0) {
      if (Date.now() > deadline) throw new Error(`${c.label} across the ${LINK_MTU} link: no ping through the tunnel`);
    }
    tunnels.push({ ...c, serverIp, ifname: `m${n}${tag}-a`, ends: [endA, endB], runs: [] });
  }
  for (let rep = 1; rep <= reps; rep++) {
    for (const t of tunnels) {
      const res = await iperf(a, b, t.serverIp, "tcp1", seconds);
      t.runs.push(res);
      log(`rep ${rep} tcp1 ${LINK_MTU}-link ${t.id.padEnd(22)} ${res.gbps.toFixed(3)} Gbit/s  retransmits ${res.retransmits ?? "-"}`);
    }
  }
  const out = [];
  for (const t of tunnels) {
    let pathMtu = "-";
    if (t.impl !== "wireguard-go") {
      const show = await a.exec(["node", t.bin ?? join(REPO, "bin/tswg.js"), "show", t.ifname], { check: false });
      pathMtu = /path mtu: ([^\n]*)/.exec(show.stdout)?.[1] ?? "-";
    }
    out.push({ id: t.id, label: t.label, impl: t.impl, pathMtu, gbps: summary(t.runs.map((x) => x.gbps)), runs: t.runs });
  }
  return out;
}

/** The row's table. */
export function printSmallMtu(rows, fmt) {
  const wg = rows.find((x) => x.id === "wggo")?.gbps.median;
  console.log(`\ntunnel MTU 1420 across a ${LINK_MTU}-byte IPv6 link (nothing tuned), one TCP stream`);
  const head = ["configuration", "Gbit/s median (min-max)", "vs wg-go", "path mtu (tswg show)"];
  const body = rows.map((x) => [
    x.label,
    `${fmt(x.gbps.median, 3)} (${fmt(x.gbps.min, 3)}-${fmt(x.gbps.max, 3)})`,
    wg ? fmt(x.gbps.median / wg) + "x" : "-",
    x.pathMtu,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => String(r[i]).length)));
  const line = (r) => r.map((v, i) => String(v).padEnd(widths[i])).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of body) console.log(line(r));
}
