import { promises as fs } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UapiErrno, UapiError } from "../../src/uapi/error.js";
import { UapiServer, validateInterfaceName } from "../../src/uapi/server.js";
import type { UapiHandler } from "../../src/uapi/types.js";
import { FakeDevice } from "./fake-device.js";

const K1 = "01".repeat(32);

interface Exchange {
  text: string;
  closed: boolean;
}

/** Sends `data` (in pieces, if several) and collects replies until `replies` statuses or EOF. */
function exchange(path: string, data: string | string[], replies: number, timeoutMs = 5000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    let text = "";
    let settled = false;
    const done = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => {
      settled = true;
      socket.destroy();
      reject(new Error(`no reply in time; got ${JSON.stringify(text)}`));
    }, timeoutMs);
    socket.on("connect", () => {
      for (const piece of Array.isArray(data) ? data : [data]) socket.write(piece);
    });
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if ((text.match(/errno=-?\d+\n\n/g) ?? []).length >= replies) {
        // Give a closing server a moment to show it closed.
        setTimeout(() => done(socket.readableEnded), 50);
      }
    });
    socket.on("end", () => done(true));
    socket.on("error", (err) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

let dir: string;
let server: UapiServer;
let device: FakeDevice;

beforeEach(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), "tswgt-uapi-"));
  server = new UapiServer();
  device = new FakeDevice();
});

afterEach(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

describe("UapiServer: socket file", () => {
  it("creates the directory and a 0600 socket, and removes it on close", async () => {
    const sub = join(dir, "run", "wireguard");
    await server.listen("wg0", device, { dir: sub });
    const path = join(sub, "wg0.sock");
    expect(server.path).toBe(path);
    const st = await fs.lstat(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await fs.stat(sub)).mode & 0o777).toBe(0o755);
    // Nothing else is left behind in the directory (the private staging directory is gone).
    expect(await fs.readdir(sub)).toEqual(["wg0.sock"]);
    await server.close();
    await expect(fs.lstat(path)).rejects.toMatchObject({ code: "ENOENT" });
    expect(server.path).toBeUndefined();
  });

  it("refuses an interface that another process answers for", async () => {
    await server.listen("wg0", device, { dir });
    const second = new UapiServer();
    await expect(second.listen("wg0", new FakeDevice(), { dir })).rejects.toThrow(
      /interface wg0 is in use by another process/,
    );
    // The first server is unharmed.
    expect((await exchange(join(dir, "wg0.sock"), "get=1\n\n", 1)).text).toBe("errno=0\n\n");
  });

  it("replaces a stale socket nobody listens on", async () => {
    const stale = join(dir, "wg1.sock");
    const other = net.createServer();
    await new Promise<void>((r) => other.listen(join(dir, "tmp.sock"), r));
    await fs.link(join(dir, "tmp.sock"), stale);
    await new Promise<void>((r) => other.close(() => r()));
    expect((await fs.lstat(stale)).isSocket()).toBe(true);
    await server.listen("wg1", device, { dir });
    expect((await exchange(stale, "get=1\n\n", 1)).text).toBe("errno=0\n\n");
  });

  it("refuses to replace a file that is not a socket", async () => {
    await fs.writeFile(join(dir, "wg2.sock"), "keep me");
    await expect(server.listen("wg2", device, { dir })).rejects.toThrow(/not a socket/);
    expect(await fs.readFile(join(dir, "wg2.sock"), "utf8")).toBe("keep me");
  });

  it("leaves a socket another process put in its place", async () => {
    await server.listen("wg3", device, { dir });
    const path = join(dir, "wg3.sock");
    await fs.unlink(path);
    await fs.writeFile(path, "someone else");
    await server.close();
    expect(await fs.readFile(path, "utf8")).toBe("someone else");
  });

  it("validates interface names", async () => {
    for (const bad of ["", "a/b", "..", "sixteen-chars-xx", "wg 0", "wg0\n"]) {
      expect(() => validateInterfaceName(bad)).toThrow(/not a valid interface name/);
      await expect(server.listen(bad, device, { dir })).rejects.toThrow(/not a valid interface name/);
    }
    for (const good of ["wg0", "a", "x_=+.-9", "fifteen-chars-x"]) expect(() => validateInterfaceName(good)).not.toThrow();
  });

  it("cannot listen twice", async () => {
    await server.listen("wg4", device, { dir });
    await expect(server.listen("wg5", device, { dir })).rejects.toThrow(/already listening/);
  });

  it("cannot start twice at once", async () => {
    const results = await Promise.allSettled([server.listen("wg6", device, { dir }), server.listen("wg7", device, { dir })]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(await fs.readdir(dir)).toEqual(["wg6.sock"]);
  });
});

describe("UapiServer: requests", () => {
  const path = (): string => join(dir, "wg0.sock");
  beforeEach(async () => {
    await server.listen("wg0", device, { dir, maxRequestBytes: 4096, maxLines: 50 });
  });

  it("answers get and set, several on one connection, in order", async () => {
    const r = await exchange(
      path(),
      ["get=1\n\n", "set=1\nlisten_port=1234\n", "fwmark=9\n\n", `get=1\n\nset=1\npublic_key=${K1}\n\nget=1\n\n`],
      5,
    );
    expect(r.text).toBe(
      "errno=0\n\n" +
        "errno=0\n\n" +
        "listen_port=1234\nfwmark=9\nerrno=0\n\n" +
        "errno=0\n\n" +
        `listen_port=1234\nfwmark=9\npublic_key=${K1}\npreshared_key=${"00".repeat(32)}\nprotocol_version=1\n` +
        "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nerrno=0\n\n",
    );
    expect(r.closed).toBe(false);
  });

  it("handles a request split into single bytes", async () => {
    const req = "set=1\nlisten_port=77\n\n";
    const r = await exchange(path(), [...req], 1);
    expect(r.text).toBe("errno=0\n\n");
    expect(device.listenPort).toBe(77);
  });

  it("applies an empty set request", async () => {
    expect((await exchange(path(), "set=1\n\n", 1)).text).toBe("errno=0\n\n");
    expect(device.requests).toEqual([{ replacePeers: false, peers: [] }]);
  });

  it("reports invalid values with -EINVAL and changes nothing, keeping the connection", async () => {
    const r = await exchange(path(), "set=1\nlisten_port=5\nfwmark=x\n\nget=1\n\n", 2);
    expect(r.text).toBe("errno=-22\n\nerrno=0\n\n");
    expect(device.listenPort).toBe(0);
    expect(r.closed).toBe(false);
  });

  it("reports a handler's UapiError errno", async () => {
    device.busyPorts.add(4000);
    expect((await exchange(path(), "set=1\nlisten_port=4000\n\n", 1)).text).toBe("errno=-98\n\n");
  });

  it("reports other handler failures as -ENOANO", async () => {
    const failing: UapiHandler = {
      get: () => {
        throw new Error("boom");
      },
      set: async () => {
        throw new TypeError("bug");
      },
    };
    await server.close();
    server = new UapiServer();
    await server.listen("wg0", failing, { dir });
    expect((await exchange(path(), "get=1\n\nset=1\n\n", 2)).text).toBe("errno=-55\n\nerrno=-55\n\n");
  });

  it("reports state that cannot be formatted as a failure, not a crash", async () => {
    const broken: UapiHandler = { get: () => ({ listenPort: -1, fwmark: 0, peers: [] }), set: () => undefined };
    await server.close();
    server = new UapiServer();
    await server.listen("wg0", broken, { dir });
    expect((await exchange(path(), "get=1\n\n", 1)).text).toBe("errno=-55\n\n");
  });

  it.each([
    ["an unknown operation", "hello\n", -71],
    ["a long line without a newline", "x".repeat(100), -71],
    ["a line without =", "set=1\nlisten_port\n\n", -71],
    ["trailing data after get", "get=1\nx", -22],
    ["CRLF line ends", "get=1\r\n\r\n", -71],
  ])("answers %s with an error and closes", async (_what, data, errno) => {
    const r = await exchange(path(), data, 1);
    expect(r.text).toBe(`errno=${errno}\n\n`);
    expect(r.closed).toBe(true);
  });

  it("refuses an oversized request", async () => {
    const big = "set=1\n" + `public_key=${K1}\n`.repeat(100);
    const r = await exchange(path(), big, 1);
    expect(r.text).toBe(`errno=-${UapiErrno.TOO_LARGE}\n\n`);
    expect(r.closed).toBe(true);
    expect(device.requests).toEqual([]);
  });

  it("refuses a request with too many lines", async () => {
    const many = "set=1\n" + "listen_port=1\n".repeat(60);
    const r = await exchange(path(), many, 1);
    expect(r.text).toBe(`errno=-${UapiErrno.TOO_LARGE}\n\n`);
    expect(device.requests).toEqual([]);
  });

  it("accepts a request right at the line limit", async () => {
    const ok = "set=1\n" + "listen_port=1\n".repeat(49) + "\n";
    expect((await exchange(path(), ok, 1)).text).toBe("errno=0\n\n");
  });

  it("survives clients that hang up early or send garbage", async () => {
    for (const junk of ["", "set=1\nlisten_port=1", "\0\0\0\n\n", "get=1\n"]) {
      await new Promise<void>((resolve) => {
        const s = net.connect({ path: path() }, () => {
          s.end(junk);
        });
        s.on("close", () => resolve());
        s.on("error", () => resolve());
        s.resume();
      });
    }
    expect((await exchange(path(), "get=1\n\n", 1)).text).toBe("errno=0\n\n");
  });

  it("runs requests from several connections one at a time", async () => {
    let running = 0;
    let overlapped = false;
    const slow: UapiHandler = {
      get: () => ({ listenPort: 0, fwmark: 0, peers: [] }),
      set: async () => {
        running++;
        if (running > 1) overlapped = true;
        await new Promise((r) => setTimeout(r, 20));
        running--;
      },
    };
    await server.close();
    server = new UapiServer();
    await server.listen("wg0", slow, { dir });
    const results = await Promise.all(Array.from({ length: 5 }, () => exchange(path(), "set=1\n\n", 1)));
    expect(results.map((r) => r.text)).toEqual(Array(5).fill("errno=0\n\n"));
    expect(overlapped).toBe(false);
  });

  it("stops serving open connections on close", async () => {
    const s = net.connect({ path: path() });
    await new Promise<void>((r) => s.on("connect", () => r()));
    const closed = new Promise<void>((r) => s.on("close", () => r()));
    s.on("error", () => undefined);
    s.resume();
    await server.close();
    await closed;
  });
});

describe("UapiServer: idle connections", () => {
  it("closes connections that send nothing, so 64 idle clients cannot lock out wg", async () => {
    await server.listen("wg0", device, { dir, idleTimeoutMs: 300 });
    const path = join(dir, "wg0.sock");
    const idle: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let i = 0; i < 64; i++) {
      const s = net.connect({ path });
      s.on("error", () => undefined);
      closed.push(new Promise<void>((r) => s.on("close", () => r())));
      await new Promise<void>((r) => s.on("connect", () => r()));
      idle.push(s);
    }
    try {
      // Every slot is taken: a 65th client is turned away ...
      await expect(exchange(path, "get=1\n\n", 1, 200)).rejects.toThrow();
      // ... until the idle ones are closed, which they are.
      await Promise.all(closed);
      const r = await exchange(path, "get=1\n\n", 1);
      expect(r.text).toMatch(/errno=0\n\n$/);
    } finally {
      for (const s of idle) s.destroy();
    }
  });

  it("keeps a connection that is busy or between requests within the timeout", async () => {
    await server.listen("wg0", device, { dir, idleTimeoutMs: 400 });
    const r = await exchange(join(dir, "wg0.sock"), ["get=1\n\n", "get=1\n\n"], 2);
    expect(r.text.match(/errno=0/g)).toHaveLength(2);
    expect(r.closed).toBe(false);
  });

  it("refuses a timeout of zero (there is always one)", async () => {
    await expect(server.listen("wg0", device, { dir, idleTimeoutMs: 0 })).rejects.toThrow(/idleTimeoutMs/);
  });
});

describe("UapiError from handlers", () => {
  it("is what set throws for a busy port", () => {
    const d = new FakeDevice();
    d.busyPorts.add(1);
    expect(() => d.set({ listenPort: 1, replacePeers: false, peers: [] })).toThrow(UapiError);
  });
});
