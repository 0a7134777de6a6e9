// Crypto micro-benchmark: ChaCha20-Poly1305 seals per second at 1420 bytes for each registered
// backend (one call per packet), and the native addon's batched API (many packets per call).
// Run alone with `node bench/crypto.mjs` after `npm run build`.
import { pathToFileURL } from "node:url";
import { REPO } from "./lib/tunnels.mjs";

const SIZE = 1420;

function rate(fn, minMs = 600) {
  // Warm up, then count calls in a fixed time window.
  for (let i = 0; i < 200; i++) fn(i);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    for (let i = 0; i < 100; i++) fn(n++);
    t = performance.now();
  }
  return (n / (t - t0)) * 1000;
}

export async function cryptoBench() {
  const crypto = await import(pathToFileURL(`${REPO}/dist/crypto/index.js`).href);
  const results = [];
  const key = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12);
  const packet = new Uint8Array(SIZE).fill(0xab);
  for (const name of crypto.backendNames()) {
    let backend;
    try {
      backend = crypto.getBackend(name);
    } catch (err) {
      results.push({ name, error: String(err.message ?? err) });
      continue;
    }
    const pps = rate((i) => {
      nonce[4] = i & 0xff;
      nonce[5] = (i >> 8) & 0xff;
      backend.aeadSeal(key, nonce, packet);
    });
    results.push({ name: `${name} (one packet per call)`, packetsPerSecond: Math.round(pps), gbps: (pps * SIZE * 8) / 1e9 });
  }
  // The native data path seals in C++ with no JavaScript per packet; its batch entry point shows
  // what one core does when the boundary is crossed once per batch.
  try {
    const { loadNative } = await import(pathToFileURL(`${REPO}/dist/native/load.js`).href);
    const { addon } = loadNative();
    if (addon?.aeadSealBatch) {
      const batch = 64;
      const input = new Uint8Array(SIZE * batch).fill(0xab);
      const output = new Uint8Array((SIZE + 16) * batch);
      const sizes = new Uint32Array(batch).fill(SIZE);
      const pps =
        batch *
        rate((i) => {
          addon.aeadSealBatch(key, i * batch, input, sizes, output);
        }, 800);
      results.push({ name: `native (${batch} packets per call)`, packetsPerSecond: Math.round(pps), gbps: (pps * SIZE * 8) / 1e9 });
    }
  } catch (err) {
    results.push({ name: "native batch", error: String(err.message ?? err) });
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const r of await cryptoBench()) {
    console.log(r.error ? `${r.name}: ${r.error}` : `${r.name.padEnd(36)} ${String(r.packetsPerSecond).padStart(9)} packets/s  ${r.gbps.toFixed(2)} Gbit/s`);
  }
}
