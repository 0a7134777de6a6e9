// iperf3 and ping runs inside bench hosts, and per-process CPU time and memory from /proc.
import { readFileSync } from "node:fs";

const CLK_TCK = 100; // Linux USER_HZ on every mainstream architecture

/** CPU seconds (user + system) a process has used so far, or null once it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** { rssKiB, peakKiB } of a process (VmRSS, VmHWM), or null once it is gone. */
export function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
    return { rssKiB: get("VmRSS"), peakKiB: get("VmHWM") };
  } catch {
    return null;
  }
}

/**
 * One iperf3 test from `client` to `serverIp` (a server is started on `server` for it).
 * kind: "tcp1" | "tcp4" | "udp" (1300-byte datagrams at `udpRate`, iperf3 syntax; "0" = unlimited).
 * Returns { gbps, lossPercent?, retransmits?, bytes }.
 */
export async function iperf(client, server, serverIp, kind, seconds, udpRate = "0") {
  const port = 5201;
  const srv = server.spawn(["iperf3", "-s", "-1", "--forceflush", "-B", serverIp, "-p", String(port)]);
  try {
    await srv.waitFor("Server listening", 10_000);
    const args = ["iperf3", "-c", serverIp, "-p", String(port), "-t", String(seconds), "-J", "--connect-timeout", "5000"];
    if (kind === "tcp4") args.push("-P", "4");
    if (kind === "udp") args.push("-u", "-b", udpRate, "-l", "1300");
    const r = await client.exec(args, { timeoutMs: (seconds + 30) * 1000, check: false });
    let j;
    try {
      j = JSON.parse(r.stdout);
    } catch {
      throw new Error(`iperf3 ${kind} to ${serverIp}: no JSON output (${r.stderr.trim()})`);
    }
    if (j.error) throw new Error(`iperf3 ${kind} to ${serverIp}: ${j.error}`);
    if (kind === "udp") {
      // The receiver's view: what actually came through the tunnel, and how much was lost.
      const s = j.end.sum_received ?? j.end.sum;
      const sent = j.end.sum_sent ?? j.end.sum;
      const lossPercent = j.end.sum?.lost_percent ?? (sent.packets ? (100 * (sent.packets - (s.packets ?? 0))) / sent.packets : NaN);
      return { gbps: s.bits_per_second / 1e9, bytes: s.bytes, lossPercent, sentGbps: sent.bits_per_second / 1e9 };
    }
    return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent.retransmits };
  } finally {
    await srv.stop(1000);
  }
}

/** Round-trip times without load: { avgMs, minMs, maxMs, mdevMs }. */
export async function ping(client, ip, count = 20) {
  const r = await client.exec(["ping", "-c", String(count), "-i", "0.05", "-q", ip], { check: false, timeoutMs: 30_000 });
  const m = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  if (!m) throw new Error(`ping ${ip}: ${r.stdout.trim()} ${r.stderr.trim()}`);
  return { minMs: Number(m[1]), avgMs: Number(m[2]), maxMs: Number(m[3]), mdevMs: Number(m[4]) };
}
