import { createSocket } from "node:dgram";
import { createServer, type AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { bindUdp, listenOn } from "../../src/sockets/ready.js";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

describe("listenOn", () => {
  it("resolves once listening and leaves no error listener behind", async () => {
    const server = createServer();
    closers.push(() => server.close());
    await listenOn(server, 0, "127.0.0.1");
    expect((server.address() as AddressInfo).port).toBeGreaterThan(0);
    expect(server.listenerCount("error")).toBe(0);
  });

  it("rejects with the listen error", async () => {
    const a = createServer();
    closers.push(() => a.close());
    await listenOn(a, 0, "127.0.0.1");
    const b = createServer();
    closers.push(() => b.close());
    await expect(listenOn(b, (a.address() as AddressInfo).port, "127.0.0.1")).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});

describe("bindUdp", () => {
  it("binds and rejects an exclusive second bind of the same port", async () => {
    const a = createSocket("udp4");
    closers.push(() => a.close());
    await bindUdp(a, { port: 0, address: "127.0.0.1", exclusive: true });
    expect(a.listenerCount("error")).toBe(0);
    const b = createSocket("udp4");
    closers.push(() => b.close());
    await expect(bindUdp(b, { port: a.address().port, address: "127.0.0.1", exclusive: true })).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});
