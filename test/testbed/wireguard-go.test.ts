import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor } from "../helpers/netns.js";
import { runCommand } from "../helpers/proc.js";

const reason =
  (await netnsUnavailableReason()) ??
  ((await runCommand(["wireguard-go", "--version"], { check: false }).catch(() => null)) === null ? "wireguard-go is not installed" : null);
if (reason !== null) console.warn(`skipping wireguard-go test-bed test: ${reason}`);

describe.skipIf(reason !== null)("TestBed with wireguard-go", () => {
  let bed: TestBed | undefined;
  afterAll(async () => {
    await bed?.cleanup();
  });

  it("runs wireguard-go in two namespaces under distinct names and removes their sockets", async () => {
    bed = await TestBed.create("wggo");
    const a = await bed.host("a");
    const b = await bed.host("b");
    const names = [bed.ifname("wga"), bed.ifname("wgb")];
    const procs = [a.spawn(["wireguard-go", "-f", names[0]!]), b.spawn(["wireguard-go", "-f", names[1]!])];
    const sockets = names.map((n) => `/var/run/wireguard/${n}.sock`);
    await waitFor(() => sockets.every((s) => existsSync(s)), { what: "both UAPI sockets", timeoutMs: 10_000 });
    // Each interface lives only in its own namespace.
    expect((await a.ip(["-o", "link", "show", names[0]!])).stdout).toContain(names[0]);
    expect((await a.ip(["link", "show", names[1]!], { check: false })).code).not.toBe(0);
    const show = await a.exec(["wg", "show", names[0]!], { check: false });
    expect(show.stdout + show.stderr).toMatch(new RegExp(`interface: ${names[0]}`));

    await bed.cleanup();
    expect(procs.every((p) => !p.running)).toBe(true);
    expect(sockets.some((s) => existsSync(s))).toBe(false);
  });
});
