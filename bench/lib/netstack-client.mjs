// Downloads from a byte source for a fixed time and prints {bytes, seconds} as JSON.
//   node netstack-client.mjs tcp HOST PORT SECONDS           plain socket (kernel TCP, via a TUN)
//   node netstack-client.mjs socks5 PROXYPORT HOST PORT SECONDS   through a SOCKS5 proxy on 127.0.0.1
//   node netstack-client.mjs library CONFIG HOST PORT SECONDS     tswg's network stack in this process
import { readFileSync } from "node:fs";
import { connect } from "node:net";

const [mode, ...args] = process.argv.slice(2);

function measure(socket, seconds, onDone) {
  let bytes = 0;
  let start = 0;
  socket.on("data", (d) => {
    if (start === 0) start = performance.now();
    bytes += d.length;
  });
  socket.on("error", (e) => {
    console.error(e.message);
    process.exit(1);
  });
  setTimeout(() => {
    const s = (performance.now() - start) / 1000;
    socket.destroy();
    console.log(JSON.stringify({ bytes, seconds: s }));
    void onDone?.().then(() => process.exit(0));
    if (!onDone) process.exit(0);
  }, seconds * 1000);
}

if (mode === "tcp") {
  const [host, port, seconds] = args;
  measure(connect(Number(port), host), Number(seconds));
} else if (mode === "socks5") {
  const [proxyPort, host, port, seconds] = args;
  const s = connect(Number(proxyPort), "127.0.0.1");
  const ip = host.split(".").map(Number);
  s.once("connect", () => s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, ...ip, Number(port) >> 8, Number(port) & 0xff])));
  let head = Buffer.alloc(0);
  const onHead = (d) => {
    head = Buffer.concat([head, d]);
    if (head.length < 12) return;
    s.off("data", onHead);
    if (head[3] !== 0) throw new Error(`SOCKS5 reply ${head[3]}`);
    measure(s, Number(seconds));
  };
  s.on("data", onHead);
} else if (mode === "library") {
  const [conf, host, port, seconds] = args;
  const { parseConfig, up } = await import("../../dist/index.js");
  const iface = await up({ name: "benchlib", config: parseConfig(readFileSync(conf, "utf8"), conf), netstack: true });
  const socket = iface.device.netstack.connect({ host, port: Number(port) });
  // The first handshake happens on the first packet; give it a moment without counting it.
  measure(socket, Number(seconds), () => iface.down());
} else {
  console.error("usage: see the head of this file");
  process.exit(2);
}
