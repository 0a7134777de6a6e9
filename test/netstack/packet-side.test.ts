/**
 * The stack's packet side in-process: on the native data plane it is a SOCK_SEQPACKET socket the
 * addon's Tun adopts (packets stay native); with TSWG_DATAPATH=portable it is the batch side.
 * Either way an ICMP echo request written into it comes back as lwIP's reply.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { loadNative } from "../../src/native/load.js";
import { loadNetstackAddon } from "../../src/netstack/addon.js";
import { Netstack } from "../../src/netstack/netstack.js";
import { REPO } from "../interop/nodes.js";

const stackReason = loadNetstackAddon().reason;
const native = loadNative().addon;

function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 ICMP echo request from `src` to `dst`. */
function echoRequest(src: number[], dst: number[], seq: number): Uint8Array {
  const p = new Uint8Array(20 + 8 + 32);
  p.set([0x45, 0, 0, p.length, 0, 1, 0, 0, 64, 1, 0, 0, ...src, ...dst]);
  const ip = checksum(p.subarray(0, 20));
  p[10] = ip >> 8;
  p[11] = ip & 0xff;
  p.set([8, 0, 0, 0, 0x12, 0x34, seq >> 8, seq & 0xff], 20);
  for (let i = 28; i < p.length; i++) p[i] = i;
  const ic = checksum(p.subarray(20));
  p[22] = ic >> 8;
  p[23] = ic & 0xff;
  return p;
}

async function echoThrough(stack: Netstack): Promise<Uint8Array> {
  const reply = stack.tun.read();
  await stack.tun.write([echoRequest([10, 77, 0, 2], [10, 77, 0, 1], 7)]);
  const packets = await Promise.race([reply, new Promise<null>((r) => setTimeout(() => r(null), 5000).unref())]);
  expect(packets, "no reply from the stack").not.toBeNull();
  return packets![0]!;
}

describe.skipIf(stackReason !== null)("the network stack's packet side", () => {
  it.skipIf(native?.Tun === undefined)("is a packet socket the native addon's Tun adopts; an echo request is answered through it", async () => {
    const stack = new Netstack({ addresses: ["10.77.0.1/24"], packetSide: "socket" });
    try {
      expect(stack.packetSide).toEqual({ kind: "socket", reason: null });
      const tun = stack.tun as unknown as { native: unknown; offloads(): { vnetHdr: boolean } };
      expect(typeof tun.native).toBe("object");
      expect(tun.offloads().vnetHdr).toBe(false);
      expect(stack.tun.mtu()).toBe(1420);
      const r = await echoThrough(stack);
      expect(r[9]).toBe(1); // ICMP
      expect([...r.subarray(12, 20)]).toEqual([10, 77, 0, 1, 10, 77, 0, 2]);
      expect(r[20]).toBe(0); // echo reply
      expect(stack.stats().packetsIn).toBe(1);
      expect(stack.stats().packetsOut).toBe(1);
      // The stack's sink is set on the Tun (the data plane's packets go in by a call); what
      // JavaScript writes still goes through the socket.
      expect((stack.tun as unknown as { direct: boolean }).direct).toBe(true);
      expect(stack.stats().packetsDirect).toBe(0);
    } finally {
      await stack.tun.close();
    }
  });

  it("is the batch side with TSWG_DATAPATH=portable, and answers the same way", () => {
    // Its own process: one stack per process, and the choice is read from the environment.
    const script = [
      `const { Netstack } = await import(${JSON.stringify(`${REPO}/dist/netstack/netstack.js`)});`,
      "const s = new Netstack({ addresses: ['10.77.0.1/24'] });",
      "const pkt = Buffer.from(process.argv[1], 'hex');",
      "const reply = s.tun.read();",
      "await s.tun.write([pkt]);",
      // A pending read of the stack does not keep a process alive (as with the socket side).
      "const keep = setTimeout(() => {}, 10_000);",
      "const got = await reply;",
      "clearTimeout(keep);",
      "console.log(JSON.stringify({ side: s.packetSide, reply: Buffer.from(got[0]).toString('hex') }));",
      "await s.tun.close();",
    ].join("\n");
    const pkt = Buffer.from(echoRequest([10, 77, 0, 2], [10, 77, 0, 1], 9)).toString("hex");
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, pkt], {
      encoding: "utf8",
      env: { ...process.env, TSWG_DATAPATH: "portable" },
      timeout: 20_000,
    });
    expect(r.status, `${r.stderr} ${r.signal ?? ""}`).toBe(0);
    const out = JSON.parse(r.stdout) as { side: { kind: string; reason: string | null }; reply: string };
    expect(out.side).toEqual({ kind: "batches", reason: "the batch side was asked for" });
    const reply = Buffer.from(out.reply, "hex");
    expect(reply[20]).toBe(0);
    expect([...reply.subarray(16, 20)]).toEqual([10, 77, 0, 2]);
  });

  it.skipIf(native?.Tun === undefined)("the addon's Tun refuses a descriptor that is not a packet socket", () => {
    // Descriptor 0 here is stdin (a pipe or /dev/null), never a SOCK_SEQPACKET socket.
    expect(() => new native!.Tun!(0, "x", 1420)).toThrow(/SOCK_SEQPACKET or SOCK_DGRAM socket/u);
    expect(() => new native!.Tun!(-1, "x", 1420)).toThrow(/fd must be a descriptor/u);
  });
});
