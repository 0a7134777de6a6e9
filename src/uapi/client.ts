/**
 * The client side of the UAPI: what `tswg show` uses to read any userspace WireGuard interface
 * (tswg or wireguard-go) through its socket.
 */
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { isZero } from "../crypto/bytes.js";
import { keyFromHex } from "../crypto/keys.js";
import { DEFAULT_UAPI_DIR } from "./server.js";
import { UAPI_EXTRA_PREFIX, type UapiDeviceState, type UapiPeerState } from "./types.js";

const TIMEOUT_MS = 5000;

/** Interfaces with a socket in `dir`, sorted by name. */
export function listInterfaces(dir: string = DEFAULT_UAPI_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(".sock"))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Sends one raw request and resolves with the reply up to (excluding) its blank line. */
export function uapiRequest(iface: string, request: string, dir: string = DEFAULT_UAPI_DIR): Promise<string> {
  const path = join(dir, `${iface}.sock`);
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no reply on ${path} within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(request));
    sock.on("data", (d: string) => {
      buf += d;
      const end = buf.indexOf("\n\n");
      if (end >= 0 && /(^|\n)errno=-?\d+$/u.test(buf.slice(0, end))) {
        clearTimeout(timer);
        sock.end();
        resolve(buf.slice(0, end + 1));
      }
    });
    sock.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(err.code === "ENOENT" ? `no such interface (no socket ${path})` : `${path}: ${err.message}`));
    });
    sock.on("close", () => {
      clearTimeout(timer);
      reject(new Error(`${path} closed the connection without a complete reply`));
    });
  });
}

/** Parses the body of a `get=1` reply. Unknown keys are skipped (newer servers may add some). */
export function parseGet(reply: string): UapiDeviceState {
  const state: UapiDeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  let peer: UapiPeerState | null = null;
  let errno = 0;
  for (const line of reply.split("\n")) {
    if (line === "") continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`malformed reply line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    switch (key) {
      case "private_key": {
        const k = keyFromHex(value);
        if (!isZero(k)) state.privateKey = k;
        break;
      }
      case "listen_port":
        state.listenPort = Number(value);
        break;
      case "fwmark":
        state.fwmark = Number(value);
        break;
      case "public_key":
        peer = {
          publicKey: keyFromHex(value),
          persistentKeepalive: 0,
          allowedIps: [],
          lastHandshakeMs: 0,
          txBytes: 0n,
          rxBytes: 0n,
          protocolVersion: 1,
        };
        state.peers.push(peer);
        break;
      case "errno":
        errno = Number(value);
        break;
      default:
        if (key.startsWith(UAPI_EXTRA_PREFIX)) {
          const target = peer ?? state;
          (target.extra ??= {})[key] = value;
        } else if (peer !== null) applyPeerKey(peer, key, value);
    }
  }
  if (errno !== 0) throw new Error(`the interface answered errno=${errno}`);
  return state;
}

function applyPeerKey(peer: UapiPeerState, key: string, value: string): void {
  switch (key) {
    case "preshared_key": {
      const k = keyFromHex(value);
      if (!isZero(k)) peer.presharedKey = k;
      break;
    }
    case "endpoint":
      peer.endpoint = value;
      break;
    case "persistent_keepalive_interval":
      peer.persistentKeepalive = Number(value);
      break;
    case "allowed_ip":
      peer.allowedIps.push(value);
      break;
    case "last_handshake_time_sec":
      peer.lastHandshakeMs += Number(value) * 1000;
      break;
    case "last_handshake_time_nsec":
      peer.lastHandshakeMs += Math.floor(Number(value) / 1e6);
      break;
    case "tx_bytes":
      peer.txBytes = BigInt(value);
      break;
    case "rx_bytes":
      peer.rxBytes = BigInt(value);
      break;
  }
}

export async function uapiGet(iface: string, dir: string = DEFAULT_UAPI_DIR): Promise<UapiDeviceState> {
  return parseGet(await uapiRequest(iface, "get=1\n\n", dir));
}

/** Whether a process answers on the interface's socket (a connect succeeds). */
export function socketAnswers(iface: string, dir: string = DEFAULT_UAPI_DIR): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(join(dir, `${iface}.sock`));
    const timer = setTimeout(() => done(false), TIMEOUT_MS);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * Interfaces whose socket a process answers on, sorted by name: what `wg show interfaces` lists.
 * Sockets left behind by a process that died are skipped.
 */
export async function listLiveInterfaces(dir: string = DEFAULT_UAPI_DIR): Promise<string[]> {
  const names = listInterfaces(dir);
  const alive = await Promise.all(names.map((n) => socketAnswers(n, dir)));
  return names.filter((_, i) => alive[i]);
}
