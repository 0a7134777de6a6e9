// Transfer checked by hash, for the kernel-mode tests. Runs inside a namespace.
//   node xfer.mjs sink PORT  - accepts connections; prints {"bytes","sha256"} per connection.
//   node xfer.mjs send       - reads "HOST PORT BYTES" lines; connects (retrying while the
//                              tunnel comes up), sends random bytes, prints {"bytes","sha256","ms"}.
import { createHash, randomBytes } from "node:crypto";
import { createServer, connect } from "node:net";
import { createInterface } from "node:readline";

const [mode, portText] = process.argv.slice(2);

if (mode === "sink") {
  createServer((sock) => {
    const h = createHash("sha256");
    let bytes = 0;
    sock.on("data", (d) => {
      bytes += d.length;
      h.update(d);
    });
    sock.on("end", () => {
      process.stdout.write(JSON.stringify({ bytes, sha256: h.digest("hex") }) + "\n");
      sock.end();
    });
    sock.on("error", () => {});
  }).listen(Number(portText), "0.0.0.0", () => process.stdout.write('{"listening":true}\n'));
} else if (mode === "send") {
  const dial = (host, port, deadline) =>
    new Promise((resolve, reject) => {
      const s = connect({ host, port, timeout: 3000 });
      s.once("connect", () => resolve(s));
      const retry = () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`cannot connect to ${host}:${port}`));
        else setTimeout(() => dial(host, port, deadline).then(resolve, reject), 300);
      };
      s.once("error", retry);
      s.once("timeout", retry);
    });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [host, port, size] = line.trim().split(/\s+/);
    try {
      const sock = await dial(host, Number(port), Date.now() + 30_000);
      sock.setTimeout(0);
      const h = createHash("sha256");
      const started = Date.now();
      let left = Number(size);
      while (left > 0) {
        const chunk = randomBytes(Math.min(left, 256 * 1024));
        left -= chunk.length;
        h.update(chunk);
        if (!sock.write(chunk)) await new Promise((r) => sock.once("drain", r));
      }
      await new Promise((r) => {
        sock.once("close", r);
        sock.end();
        sock.resume();
      });
      process.stdout.write(JSON.stringify({ bytes: Number(size), sha256: h.digest("hex"), ms: Date.now() - started }) + "\n");
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: e.message }) + "\n");
    }
  }
} else {
  process.stderr.write("usage: xfer.mjs sink PORT | send\n");
  process.exit(2);
}
