/**
 * The one reader of "host:port" text in the project: "192.0.2.1:51820", "[2001:db8::1%eth0]:51820",
 * "vpn.example.org:51820", and for listen addresses ":443" or a bare "443" (every address).
 *
 * It only splits and checks the port; what the host may be (an IP literal, a name, empty) is the
 * caller's rule, so each format keeps its own meaning and its own error wording around one parser.
 */

export interface HostPort {
  /** Host as written, without brackets or zone; "" when the text named no host. */
  host: string;
  /** IPv6 zone ("eth0") written as "[fe80::1%eth0]", or "". */
  zone: string;
  port: number;
  /** The host was written in brackets (an IPv6 literal, by convention). */
  bracketed: boolean;
}

export interface HostPortRules {
  /** Lowest port accepted: 1 for endpoints (the default), 0 for listen addresses (0 = any free port). */
  minPort?: 0 | 1;
  /** Accept a bare "PORT" with no colon, meaning every address (host ""). */
  barePort?: boolean;
  /** Accept ":PORT" (host ""). */
  emptyHost?: boolean;
}

export class HostPortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HostPortError";
  }
}

/** Splits `text`; throws {@link HostPortError} whose message says what is wrong (without quoting `text`). */
export function parseHostPort(text: string, rules: HostPortRules = {}): HostPort {
  const minPort = rules.minPort ?? 1;
  let host: string;
  let portText: string;
  let bracketed = false;
  if (rules.barePort === true && /^[0-9]+$/.test(text)) {
    host = "";
    portText = text;
  } else if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw new HostPortError('has no closing "]"');
    if (text[close + 1] !== ":") throw new HostPortError('has no ":port" after the bracketed address');
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    bracketed = true;
    if (host === "") throw new HostPortError("has nothing inside the brackets");
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw new HostPortError('has no port (expected "address:port")');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) throw new HostPortError('needs brackets around an IPv6 address, as in "[2001:db8::1]:51820"');
  }
  let zone = "";
  const pct = host.indexOf("%");
  if (pct >= 0) {
    if (!bracketed) throw new HostPortError("has a zone outside brackets");
    zone = host.slice(pct + 1);
    host = host.slice(0, pct);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(zone)) throw new HostPortError(`has an invalid zone ${JSON.stringify(zone)}`);
  }
  if (host === "" && !bracketed && rules.emptyHost !== true && !(rules.barePort === true && !text.includes(":"))) {
    throw new HostPortError("has no address before the port");
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < minPort || Number(portText) > 65535) {
    throw new HostPortError(`does not end in a port number from ${minPort} to 65535`);
  }
  return { host, zone, port: Number(portText), bracketed };
}

/** "192.0.2.1:51820", "[2001:db8::1]:51820", "[fe80::1%eth0]:51820", or ":443" for every address. */
export function formatHostPort(host: string, port: number, zone = ""): string {
  const h = zone === "" ? host : `${host}%${zone}`;
  return host.includes(":") ? `[${h}]:${port}` : `${h}:${port}`;
}
