import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UapiErrno, UapiError } from "../../src/uapi/error.js";
import { formatGet, formatStatus, parseEndpoint, parseSet } from "../../src/uapi/protocol.js";
import type { UapiDeviceState } from "../../src/uapi/types.js";

const K1 = "01".repeat(32);
const K2 = "a2".repeat(32);
const ZERO = "00".repeat(32);
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

function parseError(lines: string[]): UapiError {
  try {
    parseSet(lines);
  } catch (err) {
    expect(err).toBeInstanceOf(UapiError);
    return err as UapiError;
  }
  throw new Error(`expected ${JSON.stringify(lines)} to be refused`);
}

describe("parseSet: device keys", () => {
  it("an empty request changes nothing", () => {
    expect(parseSet([])).toEqual({ replacePeers: false, peers: [] });
  });

  it("reads every device key", () => {
    expect(parseSet([`private_key=${K2}`, "listen_port=51820", "fwmark=4294967295", "replace_peers=true"])).toEqual({
      privateKey: bytes(K2),
      listenPort: 51820,
      fwmark: 4294967295,
      replacePeers: true,
      peers: [],
    });
  });

  it("takes the all-zero private key as removal, and upper-case hex", () => {
    expect(parseSet([`private_key=${ZERO}`]).privateKey).toBeNull();
    expect(parseSet([`private_key=${K2.toUpperCase()}`]).privateKey).toEqual(bytes(K2));
  });

  it("accepts the limits of numbers and leading zeros", () => {
    expect(parseSet(["listen_port=0"]).listenPort).toBe(0);
    expect(parseSet(["listen_port=65535"]).listenPort).toBe(65535);
    expect(parseSet(["listen_port=00080"]).listenPort).toBe(80);
    expect(parseSet(["fwmark=0"]).fwmark).toBe(0);
  });

  it.each([
    ["listen_port=65536"],
    ["listen_port=-1"],
    ["listen_port=+1"],
    ["listen_port="],
    ["listen_port= 1"],
    ["listen_port=0x10"],
    ["listen_port=1.5"],
    ["fwmark=4294967296"],
    ["fwmark=off"],
    ["replace_peers=false"],
    ["replace_peers=TRUE"],
    [`private_key=${K1.slice(2)}`],
    [`private_key=${K1}00`],
    [`private_key=${"g".repeat(64)}`],
    ["private_key="],
  ])("refuses %s with EINVAL", (line) => {
    const err = parseError([line]);
    expect(err.errno).toBe(UapiErrno.INVALID);
    expect(err.message).toContain(line.slice(0, line.indexOf("=")));
  });

  it("never echoes a malformed private key", () => {
    const secret = "ab".repeat(31) + "zz";
    const err = parseError([`private_key=${secret}`]);
    expect(err.message).not.toContain(secret);
  });

  it.each(["endpoint=1.2.3.4:5", "allowed_ip=10.0.0.0/8", "remove=true", "protocol_version=1"])(
    "refuses the peer key in %s before any public_key",
    (line) => {
      const err = parseError([line]);
      expect(err.errno).toBe(UapiErrno.INVALID);
      expect(err.message).toMatch(/before any public_key/);
    },
  );

  it("refuses unknown keys and get-only keys", () => {
    for (const line of ["foo=1", "tx_bytes=1", "last_handshake_time_sec=1", "errno=0", "=1"]) {
      expect(parseError([line]).errno).toBe(UapiErrno.INVALID);
    }
    expect(parseError(["foo=1"]).message).toContain('"foo"');
  });

  it("refuses a line without = as a protocol error", () => {
    const err = parseError(["listen_port"]);
    expect(err.errno).toBe(UapiErrno.PROTOCOL);
  });
});

describe("parseSet: peers", () => {
  it("reads every peer key", () => {
    const req = parseSet([
      `public_key=${K1}`,
      "update_only=true",
      `preshared_key=${K2}`,
      "endpoint=192.0.2.1:51820",
      "persistent_keepalive_interval=25",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.0/24",
      "allowed_ip=fd00::/64",
      "protocol_version=1",
    ]);
    expect(req.peers).toEqual([
      {
        publicKey: bytes(K1),
        remove: false,
        updateOnly: true,
        presharedKey: bytes(K2),
        endpoint: "192.0.2.1:51820",
        persistentKeepalive: 25,
        replaceAllowedIps: true,
        allowedIps: ["10.0.0.0/24", "fd00::/64"],
        removeAllowedIps: [],
      },
    ]);
  });

  it("keeps peers, repeated ones too, in request order", () => {
    const req = parseSet([`public_key=${K1}`, "remove=true", `public_key=${K2}`, `public_key=${K1}`, "persistent_keepalive_interval=0"]);
    expect(req.peers.map((p) => Buffer.from(p.publicKey).toString("hex"))).toEqual([K1, K2, K1]);
    expect(req.peers[0]!.remove).toBe(true);
    expect(req.peers[1]!.remove).toBe(false);
    expect(req.peers[2]!.persistentKeepalive).toBe(0);
    expect(req.peers[1]!.persistentKeepalive).toBeUndefined();
  });

  it("takes the all-zero pre-shared key as removal", () => {
    expect(parseSet([`public_key=${K1}`, `preshared_key=${ZERO}`]).peers[0]!.presharedKey).toBeNull();
  });

  it("normalises allowed IPs and clears host bits", () => {
    const req = parseSet([`public_key=${K1}`, "allowed_ip=10.1.2.3/8", "allowed_ip=FD00:0:0::1/64", "allowed_ip=::ffff:1.2.3.4/120"]);
    expect(req.peers[0]!.allowedIps).toEqual(["10.0.0.0/8", "fd00::/64", "::ffff:1.2.3.0/120"]);
  });

  it("drops prefixes listed before replace_allowed_ips", () => {
    const req = parseSet([`public_key=${K1}`, "allowed_ip=10.0.0.0/8", "allowed_ip=-10.1.0.0/16", "replace_allowed_ips=true", "allowed_ip=10.2.0.0/16"]);
    expect(req.peers[0]!.replaceAllowedIps).toBe(true);
    expect(req.peers[0]!.allowedIps).toEqual(["10.2.0.0/16"]);
    expect(req.peers[0]!.removeAllowedIps).toEqual([]);
  });

  it("reads removals, the later line winning for the same prefix", () => {
    const req = parseSet([
      `public_key=${K1}`,
      "allowed_ip=-10.0.0.0/8",
      "allowed_ip=10.0.0.0/8",
      "allowed_ip=192.168.0.0/16",
      "allowed_ip=-192.168.0.0/16",
    ]);
    expect(req.peers[0]!.allowedIps).toEqual(["10.0.0.0/8"]);
    expect(req.peers[0]!.removeAllowedIps).toEqual(["192.168.0.0/16"]);
  });

  it.each([
    "allowed_ip=10.0.0.300/32",
    "allowed_ip=10.0.0.0/33",
    "allowed_ip=fd00::/129",
    "allowed_ip=10.0.0.1",
    "allowed_ip=10.0.0.0/08",
    "allowed_ip= 10.0.0.0/8",
    "allowed_ip=fe80::1%eth0/64",
    "allowed_ip=",
    "endpoint=1.2.3.4",
    "endpoint=1.2.3.4:65536",
    "endpoint=::1:51820",
    "endpoint=[1.2.3.4]:5",
    "endpoint=[::1:5",
    "endpoint=example.com:51820",
    "endpoint=",
    "persistent_keepalive_interval=65536",
    "persistent_keepalive_interval=off",
    "remove=false",
    "update_only=1",
    "replace_allowed_ips=yes",
    "protocol_version=2",
    "protocol_version=",
    `preshared_key=${K1.slice(1)}`,
    "listen_port=1",
    "private_key=" + K1,
    "bogus=1",
  ])("refuses %s inside a peer with EINVAL", (line) => {
    const err = parseError([`public_key=${K1}`, line]);
    expect(err.errno).toBe(UapiErrno.INVALID);
  });

  it("refuses a malformed public key", () => {
    expect(parseError(["public_key=xyz"]).errno).toBe(UapiErrno.INVALID);
    expect(parseError([`public_key=${K1}`, "public_key="]).message).toContain("public_key");
  });

  it("never throws anything but a UapiError, whatever the lines", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 80 }), { maxLength: 12 }), (lines) => {
        try {
          parseSet(lines);
        } catch (err) {
          return err instanceof UapiError;
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });
});

describe("parseEndpoint", () => {
  it("normalises IPv6 and keeps zones", () => {
    expect(parseEndpoint("[0:0::0001]:51820")).toBe("[::1]:51820");
    expect(parseEndpoint("[FE80::1%eth0]:1")).toBe("[fe80::1%eth0]:1");
    expect(parseEndpoint("127.0.0.1:0")).toBe("127.0.0.1:0");
    expect(parseEndpoint("[::ffff:1.2.3.4]:5")).toBe("[::ffff:1.2.3.4]:5");
  });
});

describe("formatGet", () => {
  it("writes exactly what the reference implementation writes", () => {
    // Captured from wireguard-go 0.0.20220316 after the equivalent set request.
    const state: UapiDeviceState = {
      listenPort: 57977,
      fwmark: 0,
      peers: [
        {
          publicKey: bytes(K1),
          endpoint: "[::ffff:1.2.3.4]:5",
          persistentKeepalive: 0,
          allowedIps: ["10.0.0.0/24", "::ffff:1.2.3.0/120"],
          lastHandshakeMs: 0,
          txBytes: 0,
          rxBytes: 0,
          protocolVersion: 1,
        },
      ],
    };
    expect(formatGet(state) + formatStatus(0)).toBe(
      "listen_port=57977\npublic_key=0101010101010101010101010101010101010101010101010101010101010101\n" +
        "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\nprotocol_version=1\n" +
        "endpoint=[::ffff:1.2.3.4]:5\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n" +
        "persistent_keepalive_interval=0\nallowed_ip=10.0.0.0/24\nallowed_ip=::ffff:1.2.3.0/120\nerrno=0\n\n",
    );
  });

  it("writes every key in order", () => {
    const state: UapiDeviceState = {
      privateKey: bytes(K2),
      listenPort: 51820,
      fwmark: 7,
      peers: [
        {
          publicKey: bytes(K1),
          presharedKey: bytes(K2),
          persistentKeepalive: 25,
          allowedIps: [],
          lastHandshakeMs: 1_700_000_000_123.5,
          txBytes: 2n ** 63n,
          rxBytes: 42,
          protocolVersion: 1,
        },
      ],
    };
    expect(formatGet(state).split("\n")).toEqual([
      `private_key=${K2}`,
      "listen_port=51820",
      "fwmark=7",
      `public_key=${K1}`,
      `preshared_key=${K2}`,
      "protocol_version=1",
      "last_handshake_time_sec=1700000000",
      "last_handshake_time_nsec=123500000",
      "tx_bytes=9223372036854775808",
      "rx_bytes=42",
      "persistent_keepalive_interval=25",
      "",
    ]);
  });

  it("leaves out an absent or all-zero private key, port 0 and fwmark 0", () => {
    expect(formatGet({ listenPort: 0, fwmark: 0, peers: [] })).toBe("");
    expect(formatGet({ privateKey: bytes(ZERO), listenPort: 0, fwmark: 0, peers: [] })).toBe("");
  });

  it("refuses state it cannot represent", () => {
    const peer = {
      publicKey: bytes(K1),
      persistentKeepalive: 0,
      allowedIps: [],
      lastHandshakeMs: 0,
      txBytes: 0,
      rxBytes: 0,
      protocolVersion: 1 as const,
    };
    const dev = (p: object): UapiDeviceState => ({ listenPort: 0, fwmark: 0, peers: [{ ...peer, ...p }] });
    expect(() => formatGet(dev({ publicKey: new Uint8Array(31) }))).toThrow();
    expect(() => formatGet(dev({ endpoint: "1.2.3.4:5\nprivate_key=00" }))).toThrow(/one line/);
    expect(() => formatGet(dev({ allowedIps: ["10.0.0.0/8\n"] }))).toThrow(/one line/);
    expect(() => formatGet(dev({ txBytes: -1 }))).toThrow(/non-negative/);
    expect(() => formatGet(dev({ rxBytes: 1.5 }))).toThrow(/non-negative/);
    expect(() => formatGet({ listenPort: 70000, fwmark: 0, peers: [] })).toThrow(/listenPort/);
  });
});

describe("formatStatus", () => {
  it("negates errno values and ends the reply", () => {
    expect(formatStatus(0)).toBe("errno=0\n\n");
    expect(formatStatus(UapiErrno.INVALID)).toBe("errno=-22\n\n");
    expect(formatStatus(UapiErrno.PROTOCOL)).toBe("errno=-71\n\n");
  });
});

describe("UapiError", () => {
  it("keeps a positive errno and refuses nonsense", () => {
    expect(new UapiError(UapiErrno.PORT_IN_USE, "x").errno).toBe(98);
    expect(() => new UapiError(0, "x")).toThrow(RangeError);
    expect(() => new UapiError(-22, "x")).toThrow(RangeError);
  });
});
