/**
 * Shared vectors of the data-plane conformance suite: every implementation (TypeScript and
 * native) is run against these same numbers and bytes.
 */

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));

/** Inner addresses: the peer's tunnel address, and the interface's own side of the tunnel. */
export const PEER_IP = "10.77.0.2";
export const OTHER_IP = "10.77.0.3";
export const LOCAL_IP = "10.77.0.1";
/** Not an address of the interface: inner packets delivered to it are dropped quietly by the kernel. */
export const SINK_IP = "10.77.0.9";
export const TUNNEL_MTU = 1420;
/** A low counter limit (REJECT_AFTER_MESSAGES) so the suite can reach it. */
export const LIMIT = 1_000_000;

/** Keys of three sessions, by their local index (ours) and remote index (the peer's). */
export const SESSIONS = {
  a: { localIndex: 0x01020304, remoteIndex: 0x0a0b0c0d, receiveKey: hex("0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"), sendKey: hex("a1".repeat(32)) },
  b: { localIndex: 0x11121314, remoteIndex: 0x1a1b1c1d, receiveKey: hex("b2".repeat(32)), sendKey: hex("b3".repeat(32)) },
  c: { localIndex: 0x21222324, remoteIndex: 0x2a2b2c2d, receiveKey: hex("c4".repeat(32)), sendKey: hex("c5".repeat(32)) },
} as const;

/**
 * Known answer: session a's receive key, counter 7, receiver 0x01020304, this 40-byte IPv4/UDP
 * packet (from PEER_IP to SINK_IP) padded to 48 bytes: the whole transport message.
 * (ChaCha20-Poly1305 computed independently with node:crypto when the vector was made.)
 */
export const KNOWN_ANSWER = {
  counter: 7,
  packet: hex("4500002800000000401100000a4d00020a4d00090fa0000900140000636f6e666f726d616e636521"),
  datagram: hex(
    "040000000403020107000000000000001ed4ad860be589d311b73fef6c27369600ea5ca0ebe89b160bd4406352cbae02302be658f10c343bea14e4f9b5c86a26b7eb111a6b70fc1b890c4bae4e05dcef",
  ),
};

/** Padding rule: inner IPv4 length -> padded plaintext length under TUNNEL_MTU. */
export const PADDING: [inner: number, padded: number][] = [
  [28, 32],
  [33, 48],
  [100, 112],
  [1404, 1408],
  [1410, 1420],
  [1420, 1420],
];

/**
 * Replay window (8128 counters, as wireguard-go): counters arriving in this order under one
 * keypair, and whether each is delivered or refused as a replay (in order, too old).
 */
export const REPLAY: [counter: number, delivered: boolean][] = [
  [0, true],
  [1, true],
  [1, false], // repeated
  [0, false],
  [10, true],
  [5, true], // late but inside the window
  [5, false],
  [10_000, true],
  [10_000 - 8128, true], // exactly at the window's edge
  [10_000 - 8129, false], // one beyond it: too old
  [9_999, true],
  [10_000, false],
];
