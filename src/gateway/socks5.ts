/**
 * A SOCKS5 proxy (RFC 1928, user/password auth RFC 1929) on a local TCP port whose CONNECT and
 * UDP ASSOCIATE go through the tunnel.
 *
 * 1. Greeting: the client lists methods; "no auth" unless credentials are configured, then
 *    user/password. Anything else, or bytes that are not SOCKS5: counted, closed.
 * 2. CONNECT: dial through the tunnel, reply with the result, then splice the two streams.
 * 3. UDP ASSOCIATE: a local UDP relay socket for this client; datagrams carry the SOCKS UDP
 *    header; they go out through one tunnel UDP socket and replies come back wrapped. The
 *    association ends with the TCP connection.
 * Handshakes have 10 s to complete and at most 1 KiB in flight.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIP, type AddressInfo, type Server, type Socket } from "node:net";
import type { ProxyListen } from "../conf/netstack-values.js";
import type { Logger } from "../log/logger.js";
import { newStats, type ServiceStats, type TunnelDialer } from "./dialer.js";
import { splice } from "./splice.js";
import { listenOn } from "../sockets/ready.js";

const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_HANDSHAKE_BYTES = 1024;

const REP = { ok: 0, fail: 1, netUnreachable: 3, hostUnreachable: 4, refused: 5, ttl: 6, command: 7, addressType: 8 } as const;

class ProtocolError extends Error {}

/** Reads exact byte counts from a socket during the handshake. */
class ByteReader {
  #buf = Buffer.alloc(0);
  #want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  #ended = false;

  constructor(private readonly socket: Socket) {
    socket.on("data", this.#onData);
    socket.once("end", () => this.#fail(new ProtocolError("client closed during the handshake")));
    socket.once("close", () => this.#fail(new ProtocolError("client closed during the handshake")));
  }

  #onData = (d: Buffer) => {
    this.#buf = Buffer.concat([this.#buf, d]);
    if (this.#buf.length > MAX_HANDSHAKE_BYTES) return this.#fail(new ProtocolError("handshake too long"));
    this.#check();
  };

  #fail(e: Error) {
    this.#ended = true;
    const w = this.#want;
    this.#want = null;
    w?.reject(e);
  }

  #check() {
    if (this.#want !== null && this.#buf.length >= this.#want.n) {
      const w = this.#want;
      this.#want = null;
      const out = this.#buf.subarray(0, w.n);
      this.#buf = this.#buf.subarray(w.n);
      w.resolve(out);
    }
  }

  read(n: number): Promise<Buffer> {
    if (this.#ended) return Promise.reject(new ProtocolError("client closed during the handshake"));
    return new Promise((resolve, reject) => {
      this.#want = { n, resolve, reject };
      this.#check();
    });
  }

  /** Stops reading; returns what arrived beyond the handshake. */
  detach(): Buffer {
    this.socket.off("data", this.#onData);
    return this.#buf;
  }
}

async function readAddress(r: ByteReader, atyp: number): Promise<string> {
  if (atyp === 1) return [...(await r.read(4))].join(".");
  if (atyp === 4) return ipv6String(await r.read(16));
  if (atyp === 3) {
    const len = (await r.read(1))[0]!;
    if (len === 0) throw new ProtocolError("empty host name");
    return (await r.read(len)).toString("latin1");
  }
  throw Object.assign(new ProtocolError(`address type ${atyp}`), { rep: REP.addressType });
}

function ipv6String(b: Uint8Array): string {
  const w: string[] = [];
  for (let i = 0; i < 16; i += 2) w.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return w.join(":");
}

/** ATYP + address + port, as in replies and UDP headers. */
function encodeAddress(host: string, port: number): Buffer {
  const fam = isIP(host);
  let a: Buffer;
  if (fam === 4) a = Buffer.from([1, ...host.split(".").map(Number)]);
  else if (fam === 6) {
    const full = expandIpv6(host);
    a = Buffer.alloc(17);
    a[0] = 4;
    full.forEach((word, i) => a.writeUInt16BE(word, 1 + 2 * i));
  } else {
    const name = Buffer.from(host, "latin1");
    a = Buffer.concat([Buffer.from([3, name.length]), name]);
  }
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  return Buffer.concat([a, p]);
}

function expandIpv6(host: string): number[] {
  const [head, tail] = host.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((x) => parseInt(x, 16) || 0);
}

/** Parses a SOCKS5 UDP datagram: header, then the payload. */
function parseUdpDatagram(msg: Buffer): { host: string; port: number; data: Buffer } | null {
  if (msg.length < 10 || msg[0] !== 0 || msg[1] !== 0 || msg[2] !== 0) return null; // fragments unsupported
  const atyp = msg[3];
  let off = 4;
  let host: string;
  if (atyp === 1) {
    host = [...msg.subarray(4, 8)].join(".");
    off = 8;
  } else if (atyp === 4) {
    if (msg.length < 22) return null;
    host = ipv6String(msg.subarray(4, 20));
    off = 20;
  } else if (atyp === 3) {
    const len = msg[4]!;
    if (msg.length < 5 + len + 2) return null;
    host = msg.subarray(5, 5 + len).toString("latin1");
    off = 5 + len;
  } else return null;
  if (msg.length < off + 2) return null;
  return { host, port: msg.readUInt16BE(off), data: msg.subarray(off + 2) };
}

export class Socks5Server {
  readonly stats: ServiceStats = newStats();
  #server: Server;
  readonly #relays = new Set<UdpSocket>();
  readonly #clients = new Set<Socket>();

  constructor(
    private readonly listen: ProxyListen,
    private readonly tunnel: TunnelDialer,
    private readonly log: Logger,
  ) {
    this.#server = createServer({ allowHalfOpen: true }, (s) => void this.#handle(s));
  }

  /** Starts listening; resolves with the bound port. */
  async start(): Promise<number> {
    await listenOn(this.#server, this.listen.port, this.listen.host);
    return (this.#server.address() as AddressInfo).port;
  }

  async #handle(client: Socket): Promise<void> {
    this.stats.accepted++;
    this.#clients.add(client);
    client.once("close", () => this.#clients.delete(client));
    client.on("error", () => {});
    const timer = setTimeout(() => client.destroy(), HANDSHAKE_TIMEOUT_MS);
    const r = new ByteReader(client);
    try {
      const [ver, n] = await r.read(2);
      if (ver !== 5) throw new ProtocolError(`not SOCKS5 (first byte ${ver})`);
      const methods = await r.read(n!);
      const needAuth = this.listen.username !== undefined;
      const method = needAuth ? 2 : 0;
      if (!methods.includes(method)) {
        client.end(Buffer.from([5, 0xff]));
        throw new ProtocolError("no acceptable authentication method");
      }
      client.write(Buffer.from([5, method]));
      if (needAuth) {
        const [aver, ulen] = await r.read(2);
        if (aver !== 1) throw new ProtocolError("bad auth version");
        const user = (await r.read(ulen!)).toString("utf8");
        const plen = (await r.read(1))[0]!;
        const pass = (await r.read(plen)).toString("utf8");
        const ok = user === this.listen.username && pass === this.listen.password;
        client.write(Buffer.from([1, ok ? 0 : 1]));
        if (!ok) {
          client.end();
          throw new ProtocolError("bad credentials");
        }
      }
      const [v, cmd, , atyp] = await r.read(4);
      if (v !== 5) throw new ProtocolError("bad request version");
      let host: string;
      try {
        host = await readAddress(r, atyp!);
      } catch (err) {
        const rep = (err as { rep?: number }).rep;
        if (rep !== undefined) client.end(this.#reply(rep, "0.0.0.0", 0));
        throw err;
      }
      const port = (await r.read(2)).readUInt16BE(0);
      clearTimeout(timer);
      if (cmd === 1) await this.#connect(client, r, host, port);
      else if (cmd === 3) await this.#associate(client, r);
      else {
        client.end(this.#reply(REP.command, "0.0.0.0", 0));
        throw new ProtocolError(`command ${cmd} not supported`);
      }
    } catch (err) {
      clearTimeout(timer);
      if (err instanceof ProtocolError) {
        this.stats.rejected++;
        this.log.debug(`socks5: ${err.message}`);
        if (!client.writableEnded) client.end();
        setTimeout(() => client.destroy(), 1000).unref();
      } else {
        this.stats.failed++;
        client.destroy();
      }
    }
  }

  #reply(rep: number, host: string, port: number): Buffer {
    return Buffer.concat([Buffer.from([5, rep, 0]), encodeAddress(host, port)]);
  }

  async #connect(client: Socket, r: ByteReader, host: string, port: number): Promise<void> {
    const upstream = this.tunnel.connect({ host, port, timeout: 15_000, allowHalfOpen: true });
    const ok = await new Promise<boolean>((resolve) => {
      upstream.once("connect", () => resolve(true));
      upstream.once("error", (err: NodeJS.ErrnoException) => {
        const rep = err.code === "ECONNREFUSED" ? REP.refused : err.code === "ENOTFOUND" ? REP.hostUnreachable : err.code === "ETIMEDOUT" ? REP.ttl : REP.fail;
        if (!client.destroyed) client.end(this.#reply(rep, "0.0.0.0", 0));
        this.log.debug(`socks5: CONNECT ${host}:${port}: ${err.message}`);
        resolve(false);
      });
    });
    if (!ok) {
      this.stats.failed++;
      return;
    }
    const s = upstream as unknown as { localAddress?: string; localPort?: number };
    client.write(this.#reply(REP.ok, s.localAddress ?? "0.0.0.0", s.localPort ?? 0));
    const early = r.detach();
    if (early.length > 0) upstream.write(early);
    this.stats.active++;
    await splice(client, upstream);
    this.stats.active--;
  }

  async #associate(client: Socket, r: ByteReader): Promise<void> {
    r.detach();
    const relay = createSocket(isIP(client.localAddress ?? "") === 6 ? "udp6" : "udp4");
    this.#relays.add(relay);
    const tunnelSock = this.tunnel.createUdpSocket();
    let clientAddr: { address: string; port: number } | null = null;
    await new Promise<void>((resolve) => relay.bind(0, client.localAddress, () => resolve()));
    relay.on("message", (msg, rinfo) => {
      // Only the TCP client's host may use the association.
      if (rinfo.address !== client.remoteAddress) return;
      clientAddr = rinfo;
      const d = parseUdpDatagram(msg);
      if (d === null) {
        this.stats.rejected++;
        return;
      }
      this.tunnel.lookup(d.host).then(
        (addr) => tunnelSock.send(d.data, d.port, addr),
        () => this.stats.failed++,
      );
    });
    tunnelSock.on("message", (msg: Buffer, rinfo: { address: string; port: number }) => {
      if (clientAddr === null) return;
      relay.send(Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress(rinfo.address, rinfo.port), msg]), clientAddr.port, clientAddr.address);
    });
    tunnelSock.bind(0);
    const a = relay.address();
    client.write(this.#reply(REP.ok, a.address, a.port));
    this.stats.active++;
    await new Promise<void>((resolve) => {
      client.resume();
      client.once("close", () => resolve());
      client.once("end", () => client.end());
    });
    this.stats.active--;
    tunnelSock.close();
    relay.close();
    this.#relays.delete(relay);
  }

  /** Stops listening and ends every connection and association. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const c of this.#clients) c.destroy();
    await closed;
  }
}
