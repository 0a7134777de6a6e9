/**
 * Deterministic WireGuard SET_DEVICE requests for the netlink encoder tests: every field and flag
 * the encoder handles, message splits between peers and inside one peer's allowed IPs, and the
 * removal of an allowed IP. fixtures/genl-set-device.json holds the bytes an earlier, separately
 * written encoder (an attribute tree per peer) produced for them.
 */
import { createHash } from "node:crypto";
import type { UapiPeerChange, UapiPeerState, UapiSetRequest } from "../../src/uapi/types.js";

/** 32 bytes that depend only on `label`. */
export function key(label: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(label).digest());
}

function change(i: number, over: Partial<UapiPeerChange> = {}): UapiPeerChange {
  return { publicKey: key(`peer-${i}`), remove: false, updateOnly: false, replaceAllowedIps: true, allowedIps: [], removeAllowedIps: [], ...over };
}

export interface GenlCase {
  name: string;
  ifname: string;
  request: UapiSetRequest;
  current?: UapiPeerState[];
}

/** Peers whose fields vary with i: endpoints of both families (with and without scope), PSK set/cleared/absent, keepalive absent/0/25, flags. */
function mixedPeers(n: number): UapiPeerChange[] {
  const peers: UapiPeerChange[] = [];
  for (let i = 0; i < n; i++) {
    const p = change(i, { allowedIps: [`10.${i >> 8}.${i & 255}.0/24`, `fd00:${i.toString(16)}::/64`] });
    if (i % 3 === 0) p.endpoint = `192.0.2.${i % 256}:${1024 + i}`;
    if (i % 3 === 1) p.endpoint = i % 2 === 0 ? `[2001:db8::${i.toString(16)}]:${40000 + i}` : `[fe80::${i.toString(16)}%${(i % 7) + 1}]:51820`;
    if (i % 4 === 0) p.presharedKey = key(`psk-${i}`);
    if (i % 4 === 1) p.presharedKey = null;
    if (i % 5 === 0) p.persistentKeepalive = 25;
    if (i % 5 === 1) p.persistentKeepalive = 0;
    if (i % 7 === 3) p.updateOnly = true;
    if (i % 6 === 5) p.replaceAllowedIps = false;
    if (i % 11 === 4) p.allowedIps = [];
    if (i % 13 === 6) p.allowedIps.push("0.0.0.0/0", "::/0", "192.0.2.77/32", "2001:db8::1/128");
    if (i % 17 === 8) peers.push({ ...change(100000 + i), remove: true });
    peers.push(p);
  }
  return peers;
}

export const genlCases: GenlCase[] = [
  { name: "device only", ifname: "wg0", request: { listenPort: 51820, replacePeers: false, peers: [] } },
  { name: "clear private key, fwmark 0", ifname: "wg-long-name", request: { privateKey: null, fwmark: 0, replacePeers: false, peers: [] } },
  {
    name: "one peer, every field",
    ifname: "wg1",
    request: { privateKey: key("device"), listenPort: 1, fwmark: 0xffffffff, replacePeers: true, peers: [change(1, { presharedKey: key("psk"), endpoint: "[2001:db8::1%3]:65535", persistentKeepalive: 65535, allowedIps: ["10.1.2.3/32", "2001:db8::/32"] })] },
  },
  { name: "removals only", ifname: "wg2", request: { replacePeers: false, peers: [{ ...change(1), remove: true }, { ...change(2), remove: true }] } },
  { name: "300 mixed peers over several messages", ifname: "wg3", request: { privateKey: key("device-3"), listenPort: 51821, fwmark: 7, replacePeers: true, peers: mixedPeers(300) } },
  {
    name: "a peer whose allowed IPs span messages, between two small ones",
    ifname: "wg4",
    request: {
      replacePeers: false,
      peers: [
        change(1, { endpoint: "198.51.100.1:1", allowedIps: ["10.0.0.0/8"] }),
        change(2, { presharedKey: key("psk-2"), endpoint: "198.51.100.2:2", persistentKeepalive: 10, updateOnly: true, allowedIps: Array.from({ length: 1500 }, (_, i) => (i % 3 === 2 ? `fd10::${i.toString(16)}/128` : `10.${i >> 8}.${i & 255}.1/32`)) }),
        change(3, { allowedIps: ["192.0.2.0/24"] }),
      ],
    },
  },
  {
    name: "removing an allowed IP becomes a replace with what remains",
    ifname: "wg5",
    request: {
      replacePeers: false,
      peers: [
        change(1, { updateOnly: true, replaceAllowedIps: false, allowedIps: ["10.1.0.0/16"], removeAllowedIps: ["fd00::/64"] }),
        change(2, { replaceAllowedIps: true, allowedIps: ["10.2.0.0/16"], removeAllowedIps: ["10.2.0.0/16"] }),
        change(3, { replaceAllowedIps: false, allowedIps: [], removeAllowedIps: ["10.3.0.0/24"] }),
      ],
    },
    current: [
      { publicKey: key("peer-1"), allowedIps: ["10.0.0.0/24", "fd00::/64"], persistentKeepalive: 0, lastHandshakeMs: 0, txBytes: 0n, rxBytes: 0n, protocolVersion: 1 },
      { publicKey: key("peer-3"), allowedIps: ["10.3.0.0/24", "10.4.0.0/24"], persistentKeepalive: 0, lastHandshakeMs: 0, txBytes: 0n, rxBytes: 0n, protocolVersion: 1 },
    ],
  },
];
