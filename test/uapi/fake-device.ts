/**
 * Test-only stand-in for a device: applies UAPI set requests to an in-memory state object,
 * following the rules documented on UapiPeerChange.
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { UapiErrno, UapiError } from "../../src/uapi/error.js";
import type { UapiDeviceState, UapiHandler, UapiPeerState, UapiSetRequest } from "../../src/uapi/types.js";

const hex = (k: Uint8Array): string => Buffer.from(k).toString("hex");

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  const der = Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), privateKey]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" })).export({ format: "jwk" });
  return new Uint8Array(Buffer.from(jwk.x as string, "base64url"));
}

export class FakeDevice implements UapiHandler {
  privateKey: Uint8Array | undefined;
  listenPort = 0;
  fwmark = 0;
  /** Peers by hex public key, in creation order. */
  readonly peers = new Map<string, UapiPeerState>();
  /** Ports the fake "cannot bind". */
  readonly busyPorts = new Set<number>();
  readonly requests: UapiSetRequest[] = [];
  gets = 0;

  get(): UapiDeviceState {
    this.gets++;
    return {
      privateKey: this.privateKey,
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      peers: [...this.peers.values()].map((p) => ({ ...p, allowedIps: [...p.allowedIps] })),
    };
  }

  set(req: UapiSetRequest): void {
    this.requests.push(req);
    if (req.listenPort !== undefined && this.busyPorts.has(req.listenPort)) {
      throw new UapiError(UapiErrno.PORT_IN_USE, `port ${req.listenPort} is in use`);
    }
    if (req.privateKey !== undefined) this.privateKey = req.privateKey ?? undefined;
    if (req.listenPort !== undefined) this.listenPort = req.listenPort;
    if (req.fwmark !== undefined) this.fwmark = req.fwmark;
    if (req.replacePeers) this.peers.clear();
    const own = this.privateKey === undefined ? "" : hex(publicKeyOf(this.privateKey));
    for (const change of req.peers) {
      const id = hex(change.publicKey);
      if (id === own) continue;
      if (change.remove) {
        this.peers.delete(id);
        continue;
      }
      let peer = this.peers.get(id);
      if (peer === undefined) {
        if (change.updateOnly) continue;
        peer = {
          publicKey: change.publicKey,
          persistentKeepalive: 0,
          allowedIps: [],
          lastHandshakeMs: 0,
          txBytes: 0,
          rxBytes: 0,
          protocolVersion: 1,
        };
        this.peers.set(id, peer);
      }
      if (change.presharedKey !== undefined) peer.presharedKey = change.presharedKey ?? undefined;
      if (change.endpoint !== undefined) peer.endpoint = change.endpoint;
      if (change.persistentKeepalive !== undefined) peer.persistentKeepalive = change.persistentKeepalive;
      if (change.replaceAllowedIps) peer.allowedIps = [];
      peer.allowedIps = peer.allowedIps.filter((p) => !change.removeAllowedIps.includes(p));
      for (const p of change.allowedIps) {
        // A prefix belongs to one peer at a time.
        for (const other of this.peers.values()) other.allowedIps = other.allowedIps.filter((q) => q !== p);
        peer.allowedIps.push(p);
      }
    }
  }
}
