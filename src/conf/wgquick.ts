/**
 * wg-quick configuration files: `[Interface]` and `[Peer]` sections of `Key = Value` lines.
 *
 * Keys are matched case-insensitively, `#` starts a comment (except in the hook commands, which
 * are shell text and kept whole), blank lines are ignored. Every key is one entry in the tables
 * below, which drive both parsing and writing, so adding a key is adding one entry.
 */
import { keyToBase64 } from "../crypto/keys.js";
import { ConfigError } from "./error.js";
import { excerpt, quoted } from "./excerpt.js";
import {
  formatNetstackMode,
  formatPortMapping,
  formatProxyListen,
  parseNetstackMode,
  parsePortMapping,
  parseProxyListen,
  type NetstackMode,
  type PortMapping,
  type ProxyListen,
} from "./netstack-values.js";
import { parseAttachTo, parseKernelSetting, parsePortShare, type KernelSetting, type PortShareSetting } from "./kernel-values.js";
import { parseCandidateTypeList, parseIceServerList, parsePortRangeValue, parseSignaling, type IceCandidateType } from "./ice-values.js";
import {
  formatEndpoint,
  formatTable,
  parseAddress,
  parseAllowedIp,
  parseBase64Key,
  parseBoolean,
  parseDnsItem,
  parseEndpoint,
  parseFwMark,
  parseListenPort,
  parseMssClamp,
  parseMtu,
  parsePersistentKeepalive,
  parseTable,
  parseMetricsListen,
  parseTcpListen,
  splitList,
  ValueError,
  type Endpoint,
  type MssClamp,
  type RouteTable,
} from "./values.js";

export type { Endpoint, RouteTable } from "./values.js";

export interface QuickInterface {
  privateKey: Uint8Array;
  /** Interface addresses with their prefix length ("10.0.0.1/24"), host bits kept. */
  addresses: string[];
  listenPort?: number;
  mtu?: number;
  /** Clamp the MSS of TCP SYNs through the tunnel to each peer's path; absent = off. */
  mssClamp?: MssClamp;
  /** 0 = off. */
  fwMark?: number;
  table?: RouteTable;
  /** DNS server addresses. */
  dns: string[];
  /** DNS search domains (the non-address items of DNS). */
  dnsSearch: string[];
  preUp: string[];
  postUp: string[];
  preDown: string[];
  postDown: string[];
  saveConfig: boolean;
  /** TCP addresses where peers may connect with UoTLV/1 (WireGuard over TCP); absent = none. */
  tcpListen?: string[];
  /** Signaling service URL(s); with it, peers without an Endpoint are reached through ICE. */
  signaling?: string;
  /** stun:/turn:/turns: URLs for ICE, comma separated. */
  iceServers?: string;
  /** Candidate types ICE may use; default all. */
  iceCandidateTypes?: IceCandidateType[];
  /** UDP ports ICE may bind; default any. */
  icePortRange?: [number, number];
  /** "ADDR:PORT" to serve Prometheus metrics on (tswg's own key); absent = no metrics. */
  metricsListen?: string;
  // The userspace network stack (docs/netstack.md).
  /** Run on the in-process network stack instead of a TUN (no root needed). */
  netstack?: NetstackMode;
  /** Local SOCKS5 proxies into the tunnel. */
  socks5?: ProxyListen[];
  /** Local HTTP proxies (CONNECT and plain requests) into the tunnel. */
  httpProxy?: ProxyListen[];
  /** Local listeners whose connections/datagrams are carried to a tunnel address. */
  forward?: PortMapping[];
  /** Tunnel-side listeners whose connections/datagrams are carried to a local address. */
  expose?: PortMapping[];
  // Kernel mode (see docs/kernel-mode.md).
  /** Use the kernel's WireGuard with ICE beside it: auto (when possible, the default), on, off. */
  kernel?: KernelSetting;
  /** How ICE shares the WireGuard port in kernel mode; default auto. */
  portShare?: PortShareSetting;
  /** Run ICE beside this existing WireGuard interface (kernel or UAPI) instead of creating one. */
  attachTo?: string;
}

export interface QuickPeer {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** Canonical prefixes, host bits cleared, duplicates dropped, in file order. */
  allowedIps: string[];
  endpoint?: Endpoint;
  /** Seconds; 0 = off. */
  persistentKeepalive?: number;
}

export interface QuickConfig {
  interface: QuickInterface;
  peers: QuickPeer[];
}

type InterfaceDraft = Omit<QuickInterface, "privateKey"> & { privateKey?: Uint8Array };
type PeerDraft = Omit<QuickPeer, "publicKey"> & { publicKey?: Uint8Array };

interface KeySpec<S> {
  /** Canonical spelling, used in messages and when writing. */
  name: string;
  /** May appear more than once; each occurrence adds to the value. */
  repeatable: boolean;
  /** The value is taken verbatim up to the end of the line, `#` included (shell commands). */
  raw: boolean;
  /** An empty value is allowed (lists). */
  emptyOk: boolean;
  read(section: S, value: string): void;
  /** The values to write, one line each; none when the key is unset. */
  write(section: S): string[];
}

type Opts = Partial<Pick<KeySpec<unknown>, "repeatable" | "raw" | "emptyOk">>;

function spec<S>(name: string, read: KeySpec<S>["read"], write: KeySpec<S>["write"], opts: Opts = {}): KeySpec<S> {
  return { name, read, write, repeatable: opts.repeatable ?? false, raw: opts.raw ?? false, emptyOk: opts.emptyOk ?? false };
}

const some = <T>(v: T | undefined, show: (v: T) => string = String): string[] => (v === undefined ? [] : [show(v)]);
const joined = (items: string[]): string[] => (items.length === 0 ? [] : [items.join(", ")]);
const uniquePush = (list: string[], items: string[]): void => {
  for (const i of items) if (!list.includes(i)) list.push(i);
};
const offOr = (n: number, show: (n: number) => string): string => (n === 0 ? "off" : show(n));
const hook = (name: string, field: "preUp" | "postUp" | "preDown" | "postDown"): KeySpec<InterfaceDraft> =>
  spec(name, (s, v) => void s[field].push(v), (s) => s[field], { repeatable: true, raw: true });

const INTERFACE_KEYS: KeySpec<InterfaceDraft>[] = [
  spec("PrivateKey", (s, v) => void (s.privateKey = parseBase64Key(v)), (s) => some(s.privateKey, keyToBase64)),
  spec("Address", (s, v) => uniquePush(s.addresses, splitList(v).map(parseAddress)), (s) => joined(s.addresses), { repeatable: true, emptyOk: true }),
  spec("ListenPort", (s, v) => void (s.listenPort = parseListenPort(v)), (s) => some(s.listenPort)),
  spec("MTU", (s, v) => void (s.mtu = parseMtu(v)), (s) => some(s.mtu)),
  spec("MSSClamp", (s, v) => void (s.mssClamp = parseMssClamp(v)), (s) => some(s.mssClamp)),
  spec("FwMark", (s, v) => void (s.fwMark = parseFwMark(v)), (s) => some(s.fwMark, (n) => offOr(n, (m) => `0x${m.toString(16)}`))),
  spec("Table", (s, v) => void (s.table = parseTable(v)), (s) => some(s.table, formatTable)),
  spec("DNS", readDns, (s) => joined([...s.dns, ...s.dnsSearch]), { repeatable: true, emptyOk: true }),
  hook("PreUp", "preUp"),
  hook("PostUp", "postUp"),
  hook("PreDown", "preDown"),
  hook("PostDown", "postDown"),
  spec("SaveConfig", (s, v) => void (s.saveConfig = parseBoolean(v)), (s) => (s.saveConfig ? ["true"] : [])),
  spec("TCPListen", (s, v) => uniquePush((s.tcpListen ??= []), splitList(v).map(parseTcpListen)), (s) => joined(s.tcpListen ?? []), {
    repeatable: true,
    emptyOk: true,
  }),
  spec("Signaling", (s, v) => void (s.signaling = parseSignaling(v)), (s) => some(s.signaling)),
  spec("ICEServers", (s, v) => void (s.iceServers = parseIceServerList(v)), (s) => some(s.iceServers)),
  spec("ICECandidateTypes", (s, v) => void (s.iceCandidateTypes = parseCandidateTypeList(v)), (s) => (s.iceCandidateTypes ? [s.iceCandidateTypes.join(", ")] : [])),
  spec("ICEPortRange", (s, v) => void (s.icePortRange = parsePortRangeValue(v)), (s) => (s.icePortRange ? [s.icePortRange.join("-")] : [])),
  spec("MetricsListen", (s, v) => void (s.metricsListen = parseMetricsListen(v)), (s) => some(s.metricsListen)),
  // Network stack keys.
  spec("Netstack", (s, v) => void (s.netstack = parseNetstackMode(v)), (s) => some(s.netstack, formatNetstackMode)),
  spec("SOCKS5", (s, v) => void (s.socks5 ??= []).push(...splitList(v).map(parseProxyListen)), (s) => (s.socks5 ?? []).map(formatProxyListen), { repeatable: true }),
  spec("HTTPProxy", (s, v) => void (s.httpProxy ??= []).push(...splitList(v).map(parseProxyListen)), (s) => (s.httpProxy ?? []).map(formatProxyListen), { repeatable: true }),
  spec("Forward", (s, v) => void (s.forward ??= []).push(parsePortMapping(v)), (s) => (s.forward ?? []).map(formatPortMapping), { repeatable: true }),
  spec("Expose", (s, v) => void (s.expose ??= []).push(parsePortMapping(v)), (s) => (s.expose ?? []).map(formatPortMapping), { repeatable: true }),
  // Kernel mode.
  spec("Kernel", (s, v) => void (s.kernel = parseKernelSetting(v)), (s) => some(s.kernel)),
  spec("PortShare", (s, v) => void (s.portShare = parsePortShare(v)), (s) => some(s.portShare)),
  spec("AttachTo", (s, v) => void (s.attachTo = parseAttachTo(v)), (s) => some(s.attachTo)),
];

const PEER_KEYS: KeySpec<PeerDraft>[] = [
  spec("PublicKey", (s, v) => void (s.publicKey = parseBase64Key(v)), (s) => some(s.publicKey, keyToBase64)),
  spec("PresharedKey", (s, v) => void (s.presharedKey = parseBase64Key(v)), (s) => some(s.presharedKey, keyToBase64)),
  spec("AllowedIPs", (s, v) => uniquePush(s.allowedIps, splitList(v).map(parseAllowedIp)), (s) => joined(s.allowedIps), { repeatable: true, emptyOk: true }),
  spec("Endpoint", (s, v) => void (s.endpoint = parseEndpoint(v)), (s) => some(s.endpoint, formatEndpoint)),
  spec("PersistentKeepalive", (s, v) => void (s.persistentKeepalive = parsePersistentKeepalive(v)), (s) => some(s.persistentKeepalive, (n) => offOr(n, String))),
];

function readDns(s: InterfaceDraft, value: string): void {
  for (const item of splitList(value)) {
    const parsed = parseDnsItem(item);
    if ("server" in parsed) uniquePush(s.dns, [parsed.server]);
    else uniquePush(s.dnsSearch, [parsed.search]);
  }
}

/** What a key name can look like; anything else is not quoted as a key name. */
const KEY_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/u;
const isKeyName = (text: string): boolean => KEY_NAME.test(text) && excerpt(text) === text;

const byLowerName = <S>(keys: KeySpec<S>[]): Map<string, KeySpec<S>> => new Map(keys.map((k) => [k.name.toLowerCase(), k]));
const INTERFACE_BY_NAME = byLowerName(INTERFACE_KEYS);
const PEER_BY_NAME = byLowerName(PEER_KEYS);

function emptyInterface(): InterfaceDraft {
  return { addresses: [], dns: [], dnsSearch: [], preUp: [], postUp: [], preDown: [], postDown: [], saveConfig: false };
}

interface Section<S> {
  draft: S;
  /** Line of the section header. */
  line: number;
  /** First line of each key seen, by canonical name. */
  seen: Map<string, number>;
}

/** Parses the text of a configuration file; `fileName` is only used in error messages. */
export function parseConfig(text: string, fileName: string): QuickConfig {
  const error = (line: number | undefined, section: string | undefined, key: string | undefined, reason: string): ConfigError =>
    new ConfigError({ file: fileName, line, section, key }, reason);

  let iface: Section<InterfaceDraft> | undefined;
  const peers: Section<PeerDraft>[] = [];
  let current: "Interface" | "Peer" | undefined;

  /** Applies one line to a section with that section's key table. */
  function apply<S>(section: Section<S>, keys: Map<string, KeySpec<S>>, lineNo: number, keyText: string, raw: string, value: string): void {
    const name = current!;
    const keySpec = keys.get(keyText.toLowerCase());
    if (keySpec === undefined) {
      // Only something shaped like a key name is named as one: this may be a pasted key.
      if (isKeyName(keyText)) throw error(lineNo, name, keyText, `unknown key in [${name}]`);
      throw error(lineNo, name, undefined, `${quoted(keyText)} is not a key of [${name}]`);
    }
    const first = section.seen.get(keySpec.name);
    if (first !== undefined && !keySpec.repeatable) throw error(lineNo, name, keySpec.name, `given twice (first on line ${first})`);
    section.seen.set(keySpec.name, first ?? lineNo);
    const v = keySpec.raw ? raw.slice(raw.indexOf("=") + 1).trim() : value;
    if (v === "" && !keySpec.emptyOk) throw error(lineNo, name, keySpec.name, "empty value");
    try {
      keySpec.read(section.draft, v);
    } catch (err) {
      if (err instanceof ValueError) throw error(lineNo, name, keySpec.name, err.message);
      throw err;
    }
  }

  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const hash = raw.indexOf("#");
    const stripped = (hash < 0 ? raw : raw.slice(0, hash)).trim();
    if (stripped === "") continue;

    if (stripped.startsWith("[")) {
      const header = stripped.replace(/\s+/g, "").toLowerCase();
      if (header === "[interface]") {
        current = "Interface";
        // A second [Interface] section continues the first, as with wg-quick.
        iface ??= { draft: emptyInterface(), line: lineNo, seen: new Map() };
      } else if (header === "[peer]") {
        current = "Peer";
        peers.push({ draft: { allowedIps: [] }, line: lineNo, seen: new Map() });
      } else {
        throw error(lineNo, undefined, undefined, `unknown section ${excerpt(stripped)} (expected [Interface] or [Peer])`);
      }
      continue;
    }

    const eq = stripped.indexOf("=");
    if (eq < 0) throw error(lineNo, current, undefined, `${quoted(stripped)} is not a Key = Value line`);
    const keyText = stripped.slice(0, eq).trim();
    const value = stripped.slice(eq + 1).trim();
    if (keyText === "") throw error(lineNo, current, undefined, "line has no key before =");
    if (current === undefined) {
      if (isKeyName(keyText)) throw error(lineNo, undefined, keyText, "key outside of any section (add [Interface] or [Peer] above it)");
      throw error(lineNo, undefined, undefined, `${quoted(keyText)} is outside of any section and not a key`);
    }
    if (current === "Interface") apply(iface!, INTERFACE_BY_NAME, lineNo, keyText, raw, value);
    else apply(peers[peers.length - 1]!, PEER_BY_NAME, lineNo, keyText, raw, value);
  }

  if (iface === undefined) throw error(undefined, undefined, undefined, "no [Interface] section");
  const privateKey = iface.draft.privateKey;
  if (privateKey === undefined) throw error(iface.line, "Interface", "PrivateKey", "missing");

  const peerLines = new Map<string, number>();
  const done: QuickPeer[] = [];
  for (const p of peers) {
    const publicKey = p.draft.publicKey;
    if (publicKey === undefined) throw error(p.line, "Peer", "PublicKey", "missing");
    const id = keyToBase64(publicKey);
    const line = p.seen.get("PublicKey")!;
    const earlier = peerLines.get(id);
    if (earlier !== undefined) throw error(line, "Peer", "PublicKey", `the same peer as on line ${earlier}`);
    peerLines.set(id, line);
    done.push({ ...p.draft, publicKey });
  }
  return { interface: { ...iface.draft, privateKey }, peers: done };
}

/** Writes a configuration that {@link parseConfig} reads back to an equal one. */
export function formatConfig(config: QuickConfig): string {
  const section = <S>(title: string, keys: KeySpec<S>[], data: S): string => {
    const out = [`[${title}]`];
    for (const k of keys) {
      for (const v of k.write(data)) {
        // A line break would end the value early and smuggle in another line.
        if (/[\r\n]/.test(v)) throw new Error(`${title} ${k.name}: value contains a line break`);
        if (!k.raw && v.includes("#")) throw new Error(`${title} ${k.name}: value contains #`);
        if (v !== v.trim()) throw new Error(`${title} ${k.name}: value has surrounding whitespace`);
        out.push(`${k.name} = ${v}`);
      }
    }
    return out.join("\n") + "\n";
  };
  return [section("Interface", INTERFACE_KEYS, config.interface), ...config.peers.map((p) => section("Peer", PEER_KEYS, p))].join("\n");
}
