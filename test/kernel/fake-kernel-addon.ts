import type { KernelAddon } from "../../src/kernel/addon.js";

/** The addon's raw-socket calls, in memory: queued packets per fd, sends recorded. */
export function fakeAddon(): { addon: KernelAddon; queue: Map<number, { data: Buffer; address: string }[]>; sent: { fd: number; packet: Buffer; address: string }[]; readable: Map<number, () => void> } {
  const queue = new Map<number, { data: Buffer; address: string }[]>();
  const readable = new Map<number, () => void>();
  const sent: { fd: number; packet: Buffer; address: string }[] = [];
  let next = 10;
  const unused = (): never => {
    throw new Error("not used by the raw socket");
  };
  const addon: KernelAddon = {
    abiVersion: 2,
    netlinkOpen: unused,
    netlinkSend: unused,
    netlinkRecv: unused,
    rawOpen: () => {
      const fd = next++;
      queue.set(fd, []);
      return fd;
    },
    rawRecv: (fd) => queue.get(fd)?.shift() ?? null,
    rawSend: (fd, packet, address) => {
      sent.push({ fd, packet: Buffer.from(packet), address });
      return packet.byteLength;
    },
    rawWatch: (fd, cb) => void readable.set(fd, cb),
    rawUnwatch: (fd) => void readable.delete(fd),
    close: () => undefined,
  };
  return { addon, queue, sent, readable };
}
