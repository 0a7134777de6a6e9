/**
 * The HTTP/1.1 heads exchanged before a connection switches to UoTLV/1: reading bytes up to the
 * blank line, and parsing a request or status line and its header fields. Only what the upgrade
 * needs is supported; anything else is refused with a status a server can answer with.
 */
import { MAX_HEAD_BYTES } from "./constants.js";

/** A head that cannot be used; `status` is the HTTP status a server answers it with. */
export class HeadError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "HeadError";
  }
}

/** Header fields by lower-case name. A repeated field keeps its first value, as Go's Header.Get. */
export type HeaderFields = ReadonlyMap<string, string>;

export interface RequestHead {
  method: string;
  target: string;
  /** "HTTP/1.1" or "HTTP/1.0". */
  version: string;
  headers: HeaderFields;
}

export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  headers: HeaderFields;
}

/**
 * Collects stream bytes until a complete head has arrived. Bytes after the head belong to the
 * protocol that follows and are handed back as `rest`.
 */
export class HeadReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly limit: number = MAX_HEAD_BYTES) {}

  /** Null while the head is incomplete; throws {@link HeadError} (431) once it exceeds the limit. */
  push(chunk: Uint8Array): { head: string; rest: Buffer } | null {
    const from = Math.max(0, this.buf.length - 3);
    this.buf = this.buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buf, chunk]);
    const end = findHeadEnd(this.buf, from);
    if (end < 0) {
      if (this.buf.length > this.limit) throw new HeadError(`HTTP head longer than ${this.limit} bytes`, 431);
      return null;
    }
    if (end > this.limit) throw new HeadError(`HTTP head longer than ${this.limit} bytes`, 431);
    const head = this.buf.subarray(0, end).toString("latin1");
    const rest = this.buf.subarray(end);
    this.buf = Buffer.alloc(0);
    return { head, rest };
  }
}

/** Index just past the blank line that ends a head ("\r\n\r\n", or bare "\n\n"), or -1. */
function findHeadEnd(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** Whether `text` has a control character (or, with `orSpace`, a blank) anywhere. */
export function hasControlChars(text: string, orSpace = false): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || (orSpace && c === 0x20)) return true;
  }
  return false;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: visible ASCII, obs-text and blanks; no other control characters.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function splitLines(head: string): string[] {
  const lines = head.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function parseFields(lines: string[]): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) throw new HeadError("folded header lines are not supported", 400);
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HeadError("malformed header line", 400);
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HeadError("malformed header name", 400);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) throw new HeadError("control character in a header value", 400);
    const key = name.toLowerCase();
    if (!fields.has(key)) fields.set(key, value);
  }
  return fields;
}

function parseVersion(text: string): string {
  const m = /^HTTP\/([0-9])\.([0-9])$/.exec(text);
  if (m === null) throw new HeadError("malformed HTTP version", 400);
  if (m[1] !== "1") throw new HeadError(`HTTP version ${m[1]}.${m[2]} is not supported`, 505);
  return text;
}

/** Parses a request head ("GET /path HTTP/1.1" and fields). */
export function parseRequestHead(head: string): RequestHead {
  const lines = splitLines(head);
  // Robust servers ignore empty lines before the request line (RFC 9112, 2.2).
  while (lines.length > 0 && lines[0] === "") lines.shift();
  const first = lines.shift();
  if (first === undefined) throw new HeadError("empty request", 400);
  const parts = first.split(" ");
  if (parts.length !== 3) throw new HeadError("malformed request line", 400);
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN.test(method)) throw new HeadError("malformed request method", 400);
  if (target === "" || hasControlChars(target, true)) throw new HeadError("malformed request target", 400);
  return { method, target, version: parseVersion(version), headers: parseFields(lines) };
}

/** Parses a response head ("HTTP/1.1 101 Switching Protocols" and fields). */
export function parseResponseHead(head: string): ResponseHead {
  const lines = splitLines(head);
  const first = lines.shift();
  if (first === undefined) throw new HeadError("empty response", 502);
  const m = /^(HTTP\/[0-9]\.[0-9]) ([0-9]{3})(?: (.*))?$/.exec(first);
  if (m === null) throw new HeadError(`malformed status line ${JSON.stringify(first.slice(0, 80))}`, 502);
  return { version: parseVersion(m[1]!), status: Number(m[2]), reason: m[3] ?? "", headers: parseFields(lines) };
}
