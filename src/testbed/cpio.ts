/**
 * A "newc" cpio archive writer, the format the Linux kernel unpacks as an initramfs. Only what an
 * initramfs needs: directories, regular files and symbolic links, owned by root.
 */

export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array; mode?: number }
  | { type: "symlink"; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function record(ino: number, mode: number, name: string, data: Uint8Array): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, "utf8");
  // Fields: ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check.
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join("")}`, "ascii");
  const headLen = header.length + nameBytes.length;
  return [header, nameBytes, Buffer.alloc(pad4(headLen)), Buffer.from(data), Buffer.alloc(pad4(data.length))];
}

/** The archive bytes for `entries`, in order (a directory must precede what it contains). */
export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, "");
    if (path === "" || path.split("/").includes("..")) throw new RangeError(`cpio: bad path ${JSON.stringify(e.path)}`);
    if (e.type === "dir") parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), path, new Uint8Array(0)));
    else if (e.type === "file") parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), path, e.data));
    else parts.push(...record(ino++, S_IFLNK | 0o777, path, Buffer.from(e.target, "utf8")));
  }
  parts.push(...record(0, 0, "TRAILER!!!", new Uint8Array(0)));
  return Buffer.concat(parts);
}
