/**
 * The topology the path-MTU tests share: hosts a and b on either side of a forwarding router r,
 * whose link towards b carries at most `mtu` bytes; routes both ways for IPv6 and, when given,
 * IPv4. Subnet `n` names the a–r link (192.168.n.0/24, fdNN::/64) and n+1 the r–b link.
 */
import type { Host, TestBed } from "../helpers/netns.js";

export interface SmallLink {
  a: Host;
  r: Host;
  b: Host;
  /** b's address on the small link: IPv4 (when asked for) and IPv6. */
  b4: string;
  b6: string;
}

export async function smallLink(bed: TestBed, opts: { subnet: number; mtu: number; ipv4?: boolean }): Promise<SmallLink> {
  const near = opts.subnet;
  const far = opts.subnet + 1;
  const a = await bed.host("a");
  const r = await bed.host("r", { forwarding: true });
  const b = await bed.host("b");
  const v4 = (net: number, host: number): string | undefined => (opts.ipv4 ? `192.168.${net}.${host}/24` : undefined);
  await bed.link(a, r, { a: v4(near, 1), b: v4(near, 254), a6: `fd${near}::1/64`, b6: `fd${near}::fe/64` });
  await bed.link(r, b, { a: v4(far, 254), b: v4(far, 1), a6: `fd${far}::fe/64`, b6: `fd${far}::1/64`, mtu: opts.mtu });
  if (opts.ipv4) {
    await a.ip(["route", "add", `192.168.${far}.0/24`, "via", `192.168.${near}.254`]);
    await b.ip(["route", "add", `192.168.${near}.0/24`, "via", `192.168.${far}.254`]);
  }
  await a.ip(["-6", "route", "add", `fd${far}::/64`, "via", `fd${near}::fe`]);
  await b.ip(["-6", "route", "add", `fd${near}::/64`, "via", `fd${far}::fe`]);
  return { a, r, b, b4: `192.168.${far}.1`, b6: `fd${far}::1` };
}
