// Fetches a URL through a WireGuard tunnel from an ordinary user account: no root, no TUN.
//
//   node examples/netstack-fetch.mjs peer.conf http://10.0.0.1/index.html
//
// peer.conf is a wg-quick file ([Interface] PrivateKey and Address, a [Peer]); the tunnel's
// address lives in tswg's in-process network stack and the request travels over it.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import { parseConfig, up } from "tswg";

const [confPath, url] = process.argv.slice(2);
if (confPath === undefined || url === undefined) {
  console.error("usage: node examples/netstack-fetch.mjs CONFIG URL");
  process.exit(2);
}
const config = parseConfig(readFileSync(confPath, "utf8"), confPath);
const iface = await up({ name: "fetch", config, netstack: true });
const stack = iface.device.netstack;

try {
  const target = new URL(url);
  const body = await new Promise((resolve, reject) => {
    const req = http.get(url, { createConnection: () => stack.connect({ host: target.hostname, port: Number(target.port || 80) }) }, (res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      res.on("data", (d) => {
        hash.update(d);
        bytes += d.length;
      });
      res.on("end", () => resolve({ status: res.statusCode, bytes, sha256: hash.digest("hex") }));
      res.on("error", reject);
    });
    req.on("error", reject);
  });
  console.log(JSON.stringify(body));
} finally {
  await iface.down();
}
