/**
 * An ICE endpoint names a peer, not an address: "ice:<base64 public key>". Where its datagrams go
 * is up to that peer's ICE agent, and may change with every restart; the endpoint stays the same
 * object, so the device keeps one endpoint per peer across path changes.
 */
import type { Bind, Endpoint } from "./bind.js";
import type { CarriedEndpoint } from "./capabilities.js";
import { formatAddrPort } from "./addr-port.js";
import { isIPv6 } from "node:net";

/** Where the selected pair currently leads, if anywhere. */
export type RemoteLookup = () => { address: string; port: number } | null;

/** The endpoint of the shared socket that carries the peer's datagrams now, if any. */
export type CarrierLookup = () => Endpoint | null;

export class IceEndpoint implements CarriedEndpoint {
  /** "ice:<base64 public key>": also the form `parseEndpoint` accepts. */
  readonly key: string;

  constructor(
    readonly bind: Bind,
    /** The peer's public key, 32 bytes. */
    readonly publicKey: Uint8Array,
    /** The same key, base64. */
    readonly peer: string,
    private readonly remote: RemoteLookup,
    private readonly carried: CarrierLookup = () => null,
  ) {
    this.key = `ice:${peer}`;
  }

  /**
   * While the selected pair sends from the interface's shared socket: the UDP endpoint of that
   * socket for the pair's remote address, which a data plane may send to directly.
   */
  carrier(): Endpoint | null {
    return this.carried();
  }

  /** The selected pair's remote address ("192.0.2.1:40000"), or "ice:<key>" while there is none. */
  dstToString(): string {
    const r = this.remote();
    if (r === null) return this.key;
    return formatAddrPort(isIPv6(r.address) ? 6 : 4, r.address, "", r.port);
  }

  /**
   * The peer's public key. MAC2 cookies bind to this, so a cookie stays valid when ICE moves the
   * path; the address a datagram came from is not known here (the ICE library does not say).
   */
  dstToBytes(): Uint8Array {
    return this.publicKey;
  }

  /** The selected pair's remote IP, or "". */
  dstIP(): string {
    return this.remote()?.address ?? "";
  }

  toString(): string {
    return this.key;
  }
}
