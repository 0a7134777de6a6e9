/**
 * The HTTP/1.1 Upgrade that opens a UoTLV/1 connection. The client sends
 * `GET <path>` with `Connection: Upgrade` and `Upgrade: UoTLV/1`; the server answers
 * `101 Switching Protocols` with the same two fields, and from then on both sides speak frames.
 * Like ProxyGuard, both header values must match as a whole, ignoring case: a
 * `Connection: keep-alive, Upgrade` is refused.
 */
import { UPGRADE_PROTOCOL } from "./constants.js";
import { hasControlChars, type RequestHead, type ResponseHead } from "./http-head.js";

/** The server did not switch to UoTLV/1. */
export class UpgradeError extends Error {
  constructor(
    message: string,
    /** The status the server answered with, if it answered at all. */
    readonly status?: number,
  ) {
    super(message);
    this.name = "UpgradeError";
  }
}

const REASONS: Record<number, string> = {
  101: "Switching Protocols",
  400: "Bad Request",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  505: "HTTP Version Not Supported",
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "Error";
}

const sameToken = (value: string | undefined, want: string): boolean => value !== undefined && value.toLowerCase() === want.toLowerCase();

export interface UpgradeRequestOptions {
  /** Path and query, starting with "/". */
  path: string;
  /** The Host field: host name (IPv6 in brackets) and the port if it is not the scheme's default. */
  host: string;
  userAgent: string;
}

/** The client's request head. */
export function formatUpgradeRequest(o: UpgradeRequestOptions): Buffer {
  for (const [what, v] of [["path", o.path], ["host", o.host], ["user agent", o.userAgent]] as const) {
    if (hasControlChars(v)) throw new TypeError(`${what} contains a control character`);
  }
  if (!o.path.startsWith("/") || o.path.includes(" ")) throw new TypeError(`request path ${JSON.stringify(o.path)} must start with "/" and contain no blanks`);
  return Buffer.from(
    `GET ${o.path} HTTP/1.1\r\n` +
      `Host: ${o.host}\r\n` +
      `User-Agent: ${o.userAgent}\r\n` +
      `Connection: Upgrade\r\n` +
      `Upgrade: ${UPGRADE_PROTOCOL}\r\n` +
      `\r\n`,
    "latin1",
  );
}

/** Checks the server's answer; throws {@link UpgradeError} unless it switched to UoTLV/1. */
export function checkUpgradeResponse(res: ResponseHead): void {
  if (res.status !== 101) {
    const reason = res.reason || reasonPhrase(res.status);
    throw new UpgradeError(`server answered ${res.status} ${reason} instead of 101 Switching Protocols`, res.status);
  }
  const connection = res.headers.get("connection");
  if (!sameToken(connection, "Upgrade")) {
    throw new UpgradeError(`101 response has Connection ${JSON.stringify(connection ?? "")}, expected "Upgrade"`, 101);
  }
  const upgrade = res.headers.get("upgrade");
  if (!sameToken(upgrade, UPGRADE_PROTOCOL)) {
    throw new UpgradeError(`101 response has Upgrade ${JSON.stringify(upgrade ?? "")}, expected "${UPGRADE_PROTOCOL}"`, 101);
  }
}

export type UpgradeVerdict = { accept: true } | { accept: false; status: number; body: string };

/** What a server answers a request head with. */
export function judgeUpgradeRequest(req: RequestHead): UpgradeVerdict {
  if (req.method !== "GET") return { accept: false, status: 501, body: `only GET can be upgraded to ${UPGRADE_PROTOCOL}\n` };
  if (req.version === "HTTP/1.1" && !req.headers.has("host")) return { accept: false, status: 400, body: "missing Host header\n" };
  if (!sameToken(req.headers.get("connection"), "Upgrade")) {
    return { accept: false, status: 426, body: 'the Connection header must be "Upgrade"\n' };
  }
  if (!sameToken(req.headers.get("upgrade"), UPGRADE_PROTOCOL)) {
    return { accept: false, status: 426, body: `the Upgrade header must be "${UPGRADE_PROTOCOL}"\n` };
  }
  return { accept: true };
}

/** The server's 101 answer. */
export function formatSwitchingResponse(): Buffer {
  return Buffer.from(`HTTP/1.1 101 ${reasonPhrase(101)}\r\nUpgrade: ${UPGRADE_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`, "latin1");
}

/** A refusal with a short text body; the server closes the connection after it. */
export function formatErrorResponse(status: number, body: string): Buffer {
  const bytes = Buffer.from(body, "utf8");
  // A 426 must name the protocol to upgrade to, and Upgrade is then a connection option
  // (RFC 9110, 7.8 and 15.5.22).
  const is426 = status === 426;
  const head =
    `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n` +
    (is426 ? `Upgrade: ${UPGRADE_PROTOCOL}\r\nConnection: Upgrade, close\r\n` : `Connection: close\r\n`) +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${bytes.length}\r\n` +
    `\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), bytes]);
}
