import { describe, expect, it } from "vitest";
import { cpioArchive } from "../../src/testbed/cpio.js";
import { moduleLoadOrder } from "../../src/testbed/kernel-vm.js";

describe("kernel VM image parts", () => {
  it("writes newc cpio records the kernel can unpack (header, name, 4-byte alignment, trailer)", () => {
    const data = Buffer.from("hello");
    const buf = cpioArchive([{ type: "dir", path: "bin" }, { type: "file", path: "/bin/x", data, mode: 0o755 }, { type: "symlink", path: "bin/sh", target: "x" }]);
    expect(buf.subarray(0, 6).toString()).toBe("070701");
    expect(buf.length % 4).toBe(0);
    const second = buf.indexOf("070701", 6);
    const header = buf.subarray(second, second + 110).toString();
    expect(parseInt(header.slice(14, 22), 16)).toBe(0o100755); // mode
    expect(parseInt(header.slice(54, 62), 16)).toBe(5); // file size
    expect(parseInt(header.slice(94, 102), 16)).toBe(6); // "bin/x\0"
    expect(buf.subarray(second + 110, second + 116).toString()).toBe("bin/x\0");
    expect(buf.includes("TRAILER!!!")).toBe(true);
    expect(() => cpioArchive([{ type: "dir", path: "../etc" }])).toThrow(/bad path/);
  });

  it("orders modules after their dependencies and skips built-in ones", () => {
    const dep = ["kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko", "kernel/net/9p/9pnet.ko:", "kernel/fs/netfs/netfs.ko:", "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko"].join("\n");
    const order = moduleLoadOrder(dep, ["9pnet_virtio", "9p", "virtio_pci"]);
    expect(order).toEqual(["kernel/net/9p/9pnet.ko", "kernel/net/9p/9pnet_virtio.ko", "kernel/fs/netfs/netfs.ko", "kernel/fs/9p/9p.ko"]);
  });
});
