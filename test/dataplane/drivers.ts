/**
 * The two data planes under one test interface, so that conformance.test.ts is written once:
 * - portable: the TypeScript plane, called directly;
 * - native: the addon's plane on a Linux TUN in a network namespace of the test's own and
 *   native UDP sockets on loopback. Datagrams arrive over loopback from a test socket (which is
 *   also the peer's endpoint, where the sealed datagrams go), and inner packets enter through
 *   the kernel: a UDP sender inside the namespace whose route points into the TUN.
 */
import dgram from "node:dgram";
import { AllowedIps } from "../../src/allowedips/index.js";
import { UdpBind } from "../../src/bind/udp.js";
import type { UdpEndpoint } from "../../src/bind/udp-endpoint.js";
import { getBackend } from "../../src/crypto/index.js";
import type { DataPlane, DataPlaneOptions, HandshakeNeed, PlanePeer } from "../../src/dataplane/data-plane.js";
import { NativePlane } from "../../src/dataplane/native.js";
import { PortablePlane } from "../../src/dataplane/portable.js";
import type { NativeDataPathStats } from "../../src/native/datapath.js";
import type { DataPathActivity, PeerHandle } from "../../src/noise/engine.js";
import { createLinuxTun, type LinuxTun } from "../../src/tun/linux.js";
import type { Endpoint } from "../../src/bind/bind.js";
import { waitFor, type Host, type TestBed } from "../helpers/netns.js";
import { LIMIT, LOCAL_IP, PEER_IP, TUNNEL_MTU } from "./vectors.js";

export const backend = getBackend("node");

/** Everything a plane pushed back. */
export class Recorder {
  readonly activities: DataPathActivity[] = [];
  readonly confirmed: number[] = [];
  readonly handshakes: { why: HandshakeNeed; waiting: number }[] = [];
  readonly roams: string[] = [];
  activity(_p: PlanePeer, a: DataPathActivity): void {
    this.activities.push(a);
  }
  confirmed_(localIndex: number): void {
    this.confirmed.push(localIndex);
  }
  handshakeNeeded(_p: PlanePeer, why: HandshakeNeed, waiting: Uint8Array[]): void {
    this.handshakes.push({ why, waiting: waiting.length });
  }
  roamed(_p: PlanePeer, ep: Endpoint): void {
    this.roams.push(ep.key);
  }
}

export interface PlaneUnderTest {
  readonly plane: DataPlane<PlanePeer>;
  readonly peer: PlanePeer;
  readonly events: Recorder;
  /** AllowedIPs of the peer (the device's table). */
  readonly routes: AllowedIps<PlanePeer>;
  /** Transport messages arrive from the network, one after the other, each handled before the next. */
  arrive(datagrams: Uint8Array[]): Promise<void>;
  /** Inner packets delivered towards the TUN so far. */
  delivered(): number;
  /**
   * IPv4/UDP packets of these total lengths leave the TUN side for PEER_IP; resolves with the
   * `expect` datagrams the plane sent to the peer's endpoint.
   */
  fromTun(lengths: number[], expect: number): Promise<Uint8Array[]>;
  /** Packets from the TUN side the plane could not seal (handed to the control plane). */
  passedUp(): number;
  close(): Promise<void>;
}

function fakeHandle(): PeerHandle {
  return { publicKey: new Uint8Array(32), id: "conformance", stats: { rxBytes: 0, txBytes: 0, lastHandshakeMs: 0 }, presharedKey: null, persistentKeepalive: 0 };
}

/** The one peer every driver has, owning PEER_IP, with the recorder of the plane's events. */
function onePeer(): { events: Recorder; routes: AllowedIps<PlanePeer>; peer: PlanePeer } {
  const events = new Recorder();
  const routes = new AllowedIps<PlanePeer>();
  const peer: PlanePeer = { handle: fakeHandle(), nativeId: 1, endpoint: null };
  routes.insert(`${PEER_IP}/32`, peer);
  return { events, routes, peer };
}

function planeOptions(events: Recorder, routes: AllowedIps<PlanePeer>): DataPlaneOptions<PlanePeer> {
  return {
    events: {
      activity: (p, a) => events.activity(p, a),
      confirmed: (_p, i) => events.confirmed_(i),
      handshakeNeeded: (p, why, w) => events.handshakeNeeded(p, why, w),
      roamed: (p, ep) => events.roamed(p, ep),
    },
    sourceAllowed: (p, packet) => (packet[0]! >> 4 === 4 ? routes.lookupV4(packet, 12) : routes.lookupV6(packet, 8)) === p,
    allowedIps: (p) => routes.entriesFor(p),
    rejectAfterMessages: LIMIT,
    mtu: TUNNEL_MTU,
    now: () => performance.now(),
  };
}

/** An IPv4/UDP packet of `length` bytes. */
export function ip4(src: string, dst: string, length: number): Uint8Array {
  const p = new Uint8Array(length);
  p[0] = 0x45;
  p[2] = length >> 8;
  p[3] = length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  p[21] = 9;
  p[23] = 9;
  p[24] = (length - 20) >> 8;
  p[25] = (length - 20) & 0xff;
  return p;
}

export async function portableDriver(): Promise<PlaneUnderTest> {
  const { events, routes, peer } = onePeer();
  const plane = new PortablePlane<PlanePeer>(backend, planeOptions(events, routes));
  plane.addPeer(peer);
  const bind = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets: "dgram" });
  const src = bind.parseEndpoint("127.0.0.1:40000");
  peer.endpoint = src;
  let delivered = 0;
  return {
    plane,
    peer,
    events,
    routes,
    async arrive(datagrams) {
      for (const d of datagrams) {
        const out: { peer: PlanePeer; packet: Uint8Array }[] = [];
        plane.receive(d, src, out);
        plane.flush();
        delivered += out.length;
      }
    },
    delivered: () => delivered,
    async fromTun(lengths) {
      const out: Uint8Array[] = [];
      plane.send(peer, lengths.map((n) => ip4(LOCAL_IP, PEER_IP, n)), out);
      plane.flush();
      return out;
    },
    passedUp: () => events.handshakes.reduce((n, h) => n + h.waiting, 0),
    async close() {
      plane.close();
    },
  };
}

/** Datagrams the native plane took itself (delivered, keepalives and every receive-side drop). */
function handled(s: NativeDataPathStats): number {
  return s.rxPackets + s.rxKeepalives + s.unknownIndex + s.expired + s.decryptFailed + s.replayed + s.badInner + s.sourceRejected;
}

export async function nativeDriver(bed: TestBed, host: Host, tag: string): Promise<PlaneUnderTest> {
  const { events, routes, peer } = onePeer();
  const ifname = bed.ifname(tag);
  const tun: LinuxTun = await createLinuxTun(ifname, { netns: host.ns, mtu: TUNNEL_MTU });
  const bind = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets: "native" });
  const sock = dgram.createSocket("udp4");
  const captured: Uint8Array[] = [];
  sock.on("message", (m) => captured.push(new Uint8Array(m)));
  try {
    await host.ip(["addr", "add", `${LOCAL_IP}/24`, "dev", ifname]);
    await host.ip(["link", "set", ifname, "up"]);
    const { port } = await bind.open(0);
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    // The test socket is the peer: it sends the vectors and receives what the plane seals.
    peer.endpoint = bind.parseEndpoint(`127.0.0.1:${sock.address().port}`) as UdpEndpoint;
    const choice = NativePlane.choose<PlanePeer>(tun, [bind], backend, planeOptions(events, routes), "native");
    const plane = choice.plane!;
    plane.addPeer(peer);
    plane.routesChanged();
    const send = (d: Uint8Array): Promise<void> => new Promise((r, j) => sock.send(d, port, "127.0.0.1", (e) => (e ? j(e) : r())));
    return {
      plane,
      peer,
      events,
      routes,
      async arrive(datagrams) {
        for (const d of datagrams) {
          const before = handled(plane.stats());
          await send(d);
          await waitFor(() => handled(plane.stats()) > before, { timeoutMs: 5000, what: "the native plane to take a datagram" });
        }
        // No report() here: the activity must arrive by the native plane's own push.
      },
      delivered: () => plane.stats().rxPackets,
      async fromTun(lengths, expect) {
        captured.length = 0;
        const sizes = JSON.stringify(lengths.map((n) => n - 28));
        const code = `const s=require("dgram").createSocket("udp4");const z=${sizes};let i=0;const next=()=>{if(i===z.length)return s.close();s.send(Buffer.alloc(z[i++],7),9,"${PEER_IP}",next)};next();`;
        await host.exec([process.execPath, "-e", code]);
        await waitFor(() => captured.length >= expect, { timeoutMs: 5000, what: `${expect} sealed datagrams` });
        return captured.slice();
      },
      passedUp: () => plane.stats().txPassed,
      async close() {
        plane.close();
        sock.close();
        await bind.close();
        await tun.close();
      },
    };
  } catch (err) {
    sock.close();
    await bind.close();
    await tun.close();
    throw err;
  }
}
