import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/conf/error.js";
import { formatConfig, parseConfig, type QuickConfig } from "../../src/conf/wgquick.js";

const key = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const b64 = (k: Uint8Array): string => Buffer.from(k).toString("base64");
const PRIV = key(0x11);
const PUB1 = key(0x22);
const PUB2 = key(0x33);
const PSK = key(0x44);

const iface = (extra = ""): string => `[Interface]\nPrivateKey = ${b64(PRIV)}\n${extra}`;

function configError(text: string): ConfigError {
  try {
    parseConfig(text, "wg0.conf");
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected the configuration to be refused");
}

describe("parseConfig: a full file", () => {
  const text = `# a comment line
[Interface]
PrivateKey = ${b64(PRIV)}   # trailing comment
Address = 10.0.0.1/24, fd00::1/64
address = 10.0.1.1
ListenPort = 51820
MTU = 1420
FwMark = 0x1f
Table = 1234
DNS = 1.1.1.1, 2606:4700:4700::1111, example.com
DNS = corp.example
PreUp = echo pre-up # kept: hooks are shell text
PostUp = iptables -A FORWARD -i %i -j ACCEPT
PostUp = echo second
PreDown = echo pre-down
PostDown = echo "a=b"
SaveConfig = true

[Peer]
PublicKey = ${b64(PUB1)}
PresharedKey = ${b64(PSK)}
AllowedIPs = 10.0.0.2/32, 10.1.0.0/16
AllowedIPs = fd00::2/128
Endpoint = vpn.example.com:51820
PersistentKeepalive = 25

[peer]
PUBLICKEY=${b64(PUB2)}
allowedips = 0.0.0.0/0,::/0
endpoint = [2001:DB8::1]:443
persistentkeepalive = off
`;

  it("reads every key", () => {
    expect(parseConfig(text, "wg0.conf")).toEqual({
      interface: {
        privateKey: PRIV,
        addresses: ["10.0.0.1/24", "fd00::1/64", "10.0.1.1/32"],
        listenPort: 51820,
        mtu: 1420,
        fwMark: 0x1f,
        table: { kind: "id", id: 1234 },
        dns: ["1.1.1.1", "2606:4700:4700::1111"],
        dnsSearch: ["example.com", "corp.example"],
        preUp: ["echo pre-up # kept: hooks are shell text"],
        postUp: ["iptables -A FORWARD -i %i -j ACCEPT", "echo second"],
        preDown: ["echo pre-down"],
        postDown: ['echo "a=b"'],
        saveConfig: true,
      },
      peers: [
        {
          publicKey: PUB1,
          presharedKey: PSK,
          allowedIps: ["10.0.0.2/32", "10.1.0.0/16", "fd00::2/128"],
          endpoint: { host: "vpn.example.com", port: 51820 },
          persistentKeepalive: 25,
        },
        {
          publicKey: PUB2,
          allowedIps: ["0.0.0.0/0", "::/0"],
          endpoint: { host: "2001:db8::1", port: 443 },
          persistentKeepalive: 0,
        },
      ],
    });
  });

  it("reads a minimal file with defaults", () => {
    expect(parseConfig(iface(), "x.conf")).toEqual({
      interface: {
        privateKey: PRIV,
        addresses: [],
        dns: [],
        dnsSearch: [],
        preUp: [],
        postUp: [],
        preDown: [],
        postDown: [],
        saveConfig: false,
      },
      peers: [],
    });
  });

  it("round-trips through formatConfig", () => {
    const parsed = parseConfig(text, "wg0.conf");
    const written = formatConfig(parsed);
    expect(parseConfig(written, "wg0.conf")).toEqual(parsed);
    expect(written).toContain("FwMark = 0x1f\n");
    expect(written).toContain("PersistentKeepalive = off\n");
    expect(written).toContain("Endpoint = [2001:db8::1]:443\n");
    expect(written).toContain("DNS = 1.1.1.1, 2606:4700:4700::1111, example.com, corp.example\n");
  });

  it("accepts CRLF line ends, a byte order mark, odd spacing and a repeated [Interface]", () => {
    const odd = `\uFEFF[ Interface ]\r\n  privatekey=${b64(PRIV)}\r\n[Peer]\r\nPublicKey\t=\t${b64(PUB1)}\r\n[INTERFACE]\r\nListenPort = 1\r\n`;
    const c = parseConfig(odd, "wg0.conf");
    expect(c.interface.listenPort).toBe(1);
    expect(c.peers).toHaveLength(1);
  });
});

describe("parseConfig: values", () => {
  const value = (k: string, v: string): QuickConfig => parseConfig(iface(`${k} = ${v}\n`), "wg0.conf");
  const peer = (lines: string): QuickConfig => parseConfig(iface(`[Peer]\nPublicKey = ${b64(PUB1)}\n${lines}\n`), "wg0.conf");

  it("FwMark: off, decimal and hex", () => {
    expect(value("FwMark", "off").interface.fwMark).toBe(0);
    expect(value("FwMark", "OFF").interface.fwMark).toBe(0);
    expect(value("FwMark", "4294967295").interface.fwMark).toBe(0xffffffff);
    expect(value("FwMark", "0xFFFFFFFF").interface.fwMark).toBe(0xffffffff);
  });

  it("Table: off, auto, numbers and names", () => {
    expect(value("Table", "off").interface.table).toEqual({ kind: "off" });
    expect(value("Table", "Auto").interface.table).toEqual({ kind: "auto" });
    expect(value("Table", "main").interface.table).toEqual({ kind: "name", name: "main" });
    expect(value("Table", "4294967295").interface.table).toEqual({ kind: "id", id: 4294967295 });
  });

  it("ListenPort and MTU limits", () => {
    expect(value("ListenPort", "0").interface.listenPort).toBe(0);
    expect(value("ListenPort", "65535").interface.listenPort).toBe(65535);
    expect(value("MTU", "68").interface.mtu).toBe(68);
  });

  it("SaveConfig in any case", () => {
    expect(value("SaveConfig", "False").interface.saveConfig).toBe(false);
    expect(value("SaveConfig", "TRUE").interface.saveConfig).toBe(true);
  });

  it("Address keeps host bits; AllowedIPs clears them and drops duplicates", () => {
    expect(value("Address", "10.0.0.5/8").interface.addresses).toEqual(["10.0.0.5/8"]);
    expect(peer("AllowedIPs = 10.1.2.3/16, 10.1.0.0/16, FD00::1/64").peers[0]!.allowedIps).toEqual(["10.1.0.0/16", "fd00::/64"]);
    expect(peer("AllowedIPs = 10.0.0.1").peers[0]!.allowedIps).toEqual(["10.0.0.1/32"]);
    expect(peer("AllowedIPs =").peers[0]!.allowedIps).toEqual([]);
  });

  it("Endpoint: IPv4, bracketed IPv6 with zone, host names", () => {
    expect(peer("Endpoint = 192.0.2.1:51820").peers[0]!.endpoint).toEqual({ host: "192.0.2.1", port: 51820 });
    expect(peer("Endpoint = [fe80::1%eth0]:1").peers[0]!.endpoint).toEqual({ host: "fe80::1%eth0", port: 1 });
    expect(peer("Endpoint = localhost:9").peers[0]!.endpoint).toEqual({ host: "localhost", port: 9 });
    expect(peer("Endpoint = a-b.example.org.:65535").peers[0]!.endpoint).toEqual({ host: "a-b.example.org.", port: 65535 });
  });

  it("PersistentKeepalive: off, 0 and the upper limit", () => {
    expect(peer("PersistentKeepalive = 0").peers[0]!.persistentKeepalive).toBe(0);
    expect(peer("PersistentKeepalive = 65535").peers[0]!.persistentKeepalive).toBe(65535);
  });
});

describe("parseConfig: errors name the file, line and key", () => {
  it.each([
    // [name, text, line, section, key, message]
    ["a bad allowed IP", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nAllowedIPs = 10.0.0.1/32, 10.0.0.300/32\n`), 5, "Peer", "AllowedIPs",
      'wg0.conf:5: [Peer] AllowedIPs: "10.0.0.300/32" is not a valid IP prefix'],
    ["an over-long prefix", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nAllowedIPs = 10.0.0.0/33\n`), 5, "Peer", "AllowedIPs",
      'wg0.conf:5: [Peer] AllowedIPs: "10.0.0.0/33" is not a valid IP prefix'],
    ["a bad address", iface("Address = 10.0.0.1/24, nonsense\n"), 3, "Interface", "Address",
      'wg0.conf:3: [Interface] Address: "nonsense" is not a valid IP address or address/prefix'],
    ["an unknown interface key", iface("Foo = bar\n"), 3, "Interface", "Foo", "wg0.conf:3: [Interface] Foo: unknown key in [Interface]"],
    ["a peer key in [Interface]", iface("Endpoint = 1.2.3.4:5\n"), 3, "Interface", "Endpoint",
      "wg0.conf:3: [Interface] Endpoint: unknown key in [Interface]"],
    ["an interface key in [Peer]", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nListenPort = 1\n`), 5, "Peer", "ListenPort",
      "wg0.conf:5: [Peer] ListenPort: unknown key in [Peer]"],
    ["a key outside a section", `ListenPort = 1\n${iface()}`, 1, undefined, "ListenPort",
      "wg0.conf:1: ListenPort: key outside of any section (add [Interface] or [Peer] above it)"],
    ["an unknown section", `${iface()}[Peers]\n`, 3, undefined, undefined,
      "wg0.conf:3: unknown section [Peers] (expected [Interface] or [Peer])"],
    ["a line without =", iface("ListenPort 51820\n"), 3, "Interface", undefined,
      'wg0.conf:3: [Interface]: "ListenPort 51820" is not a Key = Value line'],
    ["a line without a key", iface(" = 5\n"), 3, "Interface", undefined, "wg0.conf:3: [Interface]: line has no key before ="],
    ["a repeated single key", iface("ListenPort = 1\n\nlistenport = 2\n"), 5, "Interface", "ListenPort",
      "wg0.conf:5: [Interface] ListenPort: given twice (first on line 3)"],
    ["an empty value", iface("MTU =\n"), 3, "Interface", "MTU", "wg0.conf:3: [Interface] MTU: empty value"],
    ["an empty hook", iface("PostUp = \n"), 3, "Interface", "PostUp", "wg0.conf:3: [Interface] PostUp: empty value"],
    ["a missing private key", "[Interface]\nListenPort = 1\n", 1, "Interface", "PrivateKey", "wg0.conf:1: [Interface] PrivateKey: missing"],
    ["no [Interface]", `[Peer]\nPublicKey = ${b64(PUB1)}\n`, undefined, undefined, undefined, "wg0.conf: no [Interface] section"],
    ["an empty file", "", undefined, undefined, undefined, "wg0.conf: no [Interface] section"],
    ["a missing public key", iface("[Peer]\nAllowedIPs = 10.0.0.0/8\n"), 3, "Peer", "PublicKey", "wg0.conf:3: [Peer] PublicKey: missing"],
    ["a duplicate peer", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\n[Peer]\n# again\nPublicKey = ${b64(PUB1)}\n`), 7, "Peer", "PublicKey",
      "wg0.conf:7: [Peer] PublicKey: the same peer as on line 4"],
    ["a bad private key", "[Interface]\nPrivateKey = abc\n", 2, "Interface", "PrivateKey",
      "wg0.conf:2: [Interface] PrivateKey: not a valid key (expected 44 base64 characters encoding 32 bytes)"],
    ["a non-canonical key", `[Interface]\nPrivateKey = ${b64(PRIV).slice(0, 42)}B=\n`, 2, "Interface", "PrivateKey",
      "wg0.conf:2: [Interface] PrivateKey: not a valid key (expected 44 base64 characters encoding 32 bytes)"],
    ["a bad public key", iface("[Peer]\nPublicKey = ====\n"), 4, "Peer", "PublicKey",
      "wg0.conf:4: [Peer] PublicKey: not a valid key (expected 44 base64 characters encoding 32 bytes)"],
    ["a bad pre-shared key", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nPresharedKey = x\n`), 5, "Peer", "PresharedKey",
      "wg0.conf:5: [Peer] PresharedKey: not a valid key (expected 44 base64 characters encoding 32 bytes)"],
    ["a bad port", iface("ListenPort = 65536\n"), 3, "Interface", "ListenPort",
      'wg0.conf:3: [Interface] ListenPort: "65536" is not a port number from 0 to 65535'],
    ["a named port", iface("ListenPort = http\n"), 3, "Interface", "ListenPort",
      'wg0.conf:3: [Interface] ListenPort: "http" is not a port number from 0 to 65535'],
    ["a bad MTU", iface("MTU = 67\n"), 3, "Interface", "MTU", 'wg0.conf:3: [Interface] MTU: "67" is not an MTU from 68 to 65535'],
    ["a bad fwmark", iface("FwMark = 0x100000000\n"), 3, "Interface", "FwMark",
      'wg0.conf:3: [Interface] FwMark: "0x100000000" is neither off nor a number from 0 to 0xffffffff'],
    ["a negative fwmark", iface("FwMark = -1\n"), 3, "Interface", "FwMark",
      'wg0.conf:3: [Interface] FwMark: "-1" is neither off nor a number from 0 to 0xffffffff'],
    ["a bad table", iface("Table = no table\n"), 3, "Interface", "Table",
      'wg0.conf:3: [Interface] Table: "no table" is not off, auto, a table number or a table name'],
    ["table 0", iface("Table = 0\n"), 3, "Interface", "Table", 'wg0.conf:3: [Interface] Table: "0" is not a table number from 1 to 4294967295'],
    ["a bad DNS server", iface("DNS = 1.1.1.300\n"), 3, "Interface", "DNS", 'wg0.conf:3: [Interface] DNS: "1.1.1.300" is not a valid DNS server address'],
    ["a bad DNS item", iface("DNS = exa$mple\n"), 3, "Interface", "DNS",
      'wg0.conf:3: [Interface] DNS: "exa$mple" is neither a DNS server address nor a search domain'],
    ["a bad boolean", iface("SaveConfig = yes\n"), 3, "Interface", "SaveConfig", 'wg0.conf:3: [Interface] SaveConfig: "yes" is neither true nor false'],
    ["an endpoint without port", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = example.com\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "example.com" has no port (expected "address:port")'],
    ["an unbracketed IPv6 endpoint", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = 2001:db8::1:51820\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "2001:db8::1:51820" needs brackets around an IPv6 address, as in "[2001:db8::1]:51820"'],
    ["an endpoint with port 0", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = 1.2.3.4:0\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "1.2.3.4:0" does not end in a port number from 1 to 65535'],
    ["an endpoint with a bad IPv4", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = 10.0.0.300:1\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "10.0.0.300:1" does not have a valid IPv4 address'],
    ["an endpoint with a bad host", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = -bad-.com:1\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "-bad-.com:1" does not have a valid host name'],
    ["an endpoint with IPv4 in brackets", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = [1.2.3.4]:1\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "[1.2.3.4]:1" does not have an IPv6 address inside the brackets'],
    ["an endpoint with an open bracket", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nEndpoint = [::1:1\n`), 5, "Peer", "Endpoint",
      'wg0.conf:5: [Peer] Endpoint: "[::1:1" has no closing "]"'],
    ["a bad keepalive", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nPersistentKeepalive = 65536\n`), 5, "Peer", "PersistentKeepalive",
      'wg0.conf:5: [Peer] PersistentKeepalive: "65536" is neither off nor a number of seconds from 1 to 65535'],
    ["an incremental allowed IP", iface(`[Peer]\nPublicKey = ${b64(PUB1)}\nAllowedIPs = +10.0.0.0/8\n`), 5, "Peer", "AllowedIPs",
      'wg0.conf:5: [Peer] AllowedIPs: "+10.0.0.0/8" is not a valid IP prefix'],
  ])("%s", (_name, text, line, section, key, message) => {
    const err = configError(text);
    expect(err.message).toBe(message);
    expect(err.file).toBe("wg0.conf");
    expect(err.line).toBe(line);
    expect(err.section).toBe(section);
    expect(err.key).toBe(key);
  });

  it("does not echo a malformed private key", () => {
    const secret = b64(PRIV).slice(0, 43) + "!";
    expect(configError(`[Interface]\nPrivateKey = ${secret}\n`).message).not.toContain(secret);
  });

  describe("never echoes a key, wherever it was pasted", () => {
    // A real key: random base64 mixes cases and digits (the fixed test keys above do not).
    const secret = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const peer = (line: string) => iface(`[Peer]\nPublicKey = ${b64(PUB1)}\n${line}\n`);
    it.each([
      ["a key alone on a line", iface(`${secret}\n`)],
      ["a key alone before any section", `${secret}\n[Interface]\n`],
      ["a key without =", `[Interface]\nPrivateKey ${secret}\n`],
      ["a key without = or padding", `[Interface]\nPrivateKey ${secret.slice(0, 43)}\n`],
      ["a key after a wrong key name", `[Interface]\nPrivatKey = ${secret}\n`],
      ["a key in AllowedIPs", peer(`AllowedIPs = ${secret}`)],
      ["a key in AllowedIPs after a prefix", peer(`AllowedIPs = 10.0.0.0/8, ${secret}`)],
      ["a key in Endpoint", peer(`Endpoint = ${secret}`)],
      ["a key as an Endpoint host", peer(`Endpoint = ${secret.slice(0, 43)}:51820`)],
      ["a key in DNS", iface(`DNS = ${secret}`)],
      ["a key in Address", iface(`Address = ${secret}`)],
      ["a key in Table", iface(`Table = ${secret}`)],
      ["a key in a section header", `[${secret}]\n`],
      ["a key with a typo in the middle", `[Interface]\nPrivateKey ${secret.slice(0, 20)}!${secret.slice(21)}\n`],
    ])("%s", (_name, text) => {
      const message = configError(text).message;
      // No piece of the key longer than a few characters survives.
      for (let i = 0; i + 12 <= secret.length; i++) expect(message).not.toContain(secret.slice(i, i + 12));
      expect(message).toContain("wg0.conf:");
    });
  });

  it("quotes a short excerpt of a huge line or binary garbage", () => {
    const huge = configError(iface(`Address = ${"10.".repeat(4 * 1024 * 1024)}\n`));
    expect(huge.message.length).toBeLessThan(200);
    expect(huge.message).toMatch(/^wg0\.conf:3: \[Interface\] Address: "(10\.){16}…" is not a valid IP address/);
    const hugeLine = configError(iface(`${"x".repeat(10 * 1024 * 1024)}\n`));
    expect(hugeLine.message.length).toBeLessThan(200);
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString("latin1");
    const binary = configError(iface(`${garbage}\n`));
    expect(binary.message.length).toBeLessThan(200);
    // Nothing unprintable reaches the terminal.
    expect(binary.message).not.toMatch(/\p{Cc}/u);
    const header = configError(`[${"\u0007".repeat(100000)}]\n`);
    expect(header.message.length).toBeLessThan(200);
    expect(header.message).not.toContain("\u0007");
  });

  it("never fails with anything but a ConfigError", () => {
    const lineArb = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom("[Interface]", "[Peer]", `PrivateKey = ${b64(PRIV)}`, `PublicKey = ${b64(PUB1)}`, "AllowedIPs = 10.0.0.0/8"),
      fc.tuple(
        fc.constantFrom("Address", "ListenPort", "MTU", "FwMark", "Table", "DNS", "PostUp", "SaveConfig", "AllowedIPs", "Endpoint", "PersistentKeepalive"),
        fc.string({ maxLength: 30 }),
      ).map(([k, v]) => `${k} = ${v}`),
    );
    fc.assert(
      fc.property(fc.array(lineArb, { maxLength: 12 }), (lines) => {
        try {
          parseConfig(lines.join("\n"), "f.conf");
        } catch (err) {
          return err instanceof ConfigError;
        }
        return true;
      }),
      { numRuns: 1000 },
    );
  });
});

describe("formatConfig", () => {
  const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."));
  const prefix = fc.tuple(v4, fc.nat(32)).map(([a, n]) => {
    const bits = a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
    const masked = n === 0 ? 0 : Math.floor(bits / 2 ** (32 - n)) * 2 ** (32 - n);
    return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join(".")}/${n}`;
  });
  const command = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[\r\n]/.test(s) && s.trim() === s);
  const configArb: fc.Arbitrary<QuickConfig> = fc.record({
    interface: fc.record(
      {
        privateKey: keyArb,
        addresses: fc.uniqueArray(fc.tuple(v4, fc.integer({ min: 1, max: 32 })).map(([a, n]) => `${a}/${n}`), { maxLength: 3 }),
        listenPort: fc.nat(65535),
        mtu: fc.integer({ min: 68, max: 65535 }),
        fwMark: fc.nat(0xffffffff),
        table: fc.oneof(
          fc.constant({ kind: "off" as const }),
          fc.constant({ kind: "auto" as const }),
          fc.integer({ min: 1, max: 0xffffffff }).map((id) => ({ kind: "id" as const, id })),
          fc.constantFrom("main", "vpn_1", "x.y-z").map((name) => ({ kind: "name" as const, name })),
        ),
        dns: fc.uniqueArray(v4, { maxLength: 2 }),
        dnsSearch: fc.uniqueArray(fc.constantFrom("example.com", "corp", "a.b.c"), { maxLength: 2 }),
        preUp: fc.array(command, { maxLength: 2 }),
        postUp: fc.array(command, { maxLength: 2 }),
        preDown: fc.array(command, { maxLength: 2 }),
        postDown: fc.array(command, { maxLength: 2 }),
        saveConfig: fc.boolean(),
      },
      { requiredKeys: ["privateKey", "addresses", "dns", "dnsSearch", "preUp", "postUp", "preDown", "postDown", "saveConfig"] },
    ),
    peers: fc.uniqueArray(
      fc.record(
        {
          publicKey: keyArb,
          presharedKey: keyArb,
          allowedIps: fc.uniqueArray(prefix, { maxLength: 3 }),
          endpoint: fc.oneof(
            fc.record({ host: v4, port: fc.integer({ min: 1, max: 65535 }) }),
            fc.record({ host: fc.constantFrom("::1", "2001:db8::1", "fe80::1%eth0", "vpn.example.com"), port: fc.integer({ min: 1, max: 65535 }) }),
          ),
          persistentKeepalive: fc.nat(65535),
        },
        { requiredKeys: ["publicKey", "allowedIps"] },
      ),
      { maxLength: 3, selector: (p) => Buffer.from(p.publicKey).toString("hex") },
    ),
  });

  it("writes what parseConfig reads back equal", () => {
    fc.assert(
      fc.property(configArb, (config) => {
        expect(parseConfig(formatConfig(config), "rt.conf")).toEqual(config);
      }),
      { numRuns: 300 },
    );
  });

  it("writes a readable file", () => {
    const config = parseConfig(
      `[Interface]\nPrivateKey = ${b64(PRIV)}\nListenPort = 51820\nAddress = 10.0.0.1/24\n[Peer]\nPublicKey = ${b64(PUB1)}\nAllowedIPs = 10.0.0.2/32\nEndpoint = 1.2.3.4:51820\n`,
      "wg0.conf",
    );
    expect(formatConfig(config)).toBe(
      `[Interface]\nPrivateKey = ${b64(PRIV)}\nAddress = 10.0.0.1/24\nListenPort = 51820\n\n` +
        `[Peer]\nPublicKey = ${b64(PUB1)}\nAllowedIPs = 10.0.0.2/32\nEndpoint = 1.2.3.4:51820\n`,
    );
  });

  it("refuses values that would not read back", () => {
    const base = parseConfig(iface(), "wg0.conf");
    const withHook = (h: string): QuickConfig => ({ ...base, interface: { ...base.interface, postUp: [h] } });
    expect(() => formatConfig(withHook("echo a\nListenPort = 1"))).toThrow(/line break/);
    expect(() => formatConfig(withHook(" padded "))).toThrow(/whitespace/);
    expect(() => formatConfig({ ...base, interface: { ...base.interface, addresses: ["10.0.0.1/8 # x"] } })).toThrow(/#/);
  });
});
