/**
 * `tswg up` in kernel mode: the Linux kernel's WireGuard does the crypto and the packets, tswg
 * runs signaling and ICE beside it and keeps the kernel's endpoints pointing at the paths ICE
 * finds (src/kernel). Also the attach mode: ICE beside an existing WireGuard interface, kernel or
 * userspace (over its UAPI socket), which tswg neither creates nor configures.
 *
 * Order, as for the userspace device: PreUp, create the link, configure WireGuard over netlink,
 * addresses/MTU/up/routes/DNS (the same wg-quick steps), ICE + port sharing, a status socket for
 * `tswg show`, PostUp. Down undoes it; the kernel removes addresses and routes with the link.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { QuickConfig } from "../conf/wgquick.js";
import { defaultBackend } from "../crypto/index.js";
import { keyToBase64 } from "../crypto/keys.js";
import { UapiWireGuard, type WireGuardControl } from "../kernel/control.js";
import { detectKernelWireGuard } from "../kernel/detect.js";
import { IceBeside } from "../kernel/ice-beside.js";
import { parseShareMode } from "../kernel/port-share.js";
import { Rtnl } from "../kernel/rtnl.js";
import { KernelWireGuard } from "../kernel/wireguard-genl.js";
import type { Logger } from "../log/logger.js";
import { DEFAULT_UAPI_DIR, UapiServer } from "../uapi/server.js";
import type { UapiDeviceState, UapiPeerChange } from "../uapi/types.js";
import { runHooks, runHooksBestEffort } from "./hooks.js";
import { startIce, type IceStack } from "./ice.js";
import { setUpNetwork, type Teardown } from "./network.js";
import { resolveEndpoint } from "./resolve.js";

/** Where kernel-mode runs put their status socket (the UAPI protocol, read by `tswg show`). */
export const KERNEL_STATUS_DIR = process.env.TSWG_STATUS_DIR ?? process.env.TSWG_RUN_DIR ?? "/run/tswg";

export interface KernelDecision {
  /** "kernel": create a kernel interface; "attach": use an existing one; "userspace": the in-process device. */
  mode: "kernel" | "attach" | "userspace";
  reason: string;
}

/** What the configuration needs that only the in-process device can do, or null. */
function userspaceOnly(config: QuickConfig, inProcess: boolean): string | null {
  if (inProcess) return "an in-process packet side was given";
  if (config.interface.tcpListen !== undefined && config.interface.tcpListen.length > 0) return "TCPListen (WireGuard over TCP) needs the in-process device";
  if (config.peers.some((p) => p.endpoint?.url !== undefined)) return "a TCP (UoTLV/1) endpoint needs the in-process device";
  if (config.interface.netstack !== undefined) return "Netstack (the in-process network stack) needs the in-process device";
  if (config.interface.metricsListen !== undefined) return "MetricsListen is served by the in-process device";
  if (config.interface.mssClamp !== undefined && config.interface.mssClamp !== "off") return "MSSClamp is done by the in-process device";
  return null;
}

/** Kernel = auto | on | off, AttachTo, and whether the module is here. Throws when `on` cannot be honoured. */
export function decideKernelMode(config: QuickConfig, inProcess: boolean): KernelDecision {
  const i = config.interface;
  if (i.attachTo !== undefined) return { mode: "attach", reason: `AttachTo = ${i.attachTo}` };
  const setting = i.kernel ?? "auto";
  if (setting === "off") return { mode: "userspace", reason: "Kernel = off" };
  const blocker = userspaceOnly(config, inProcess);
  if (blocker !== null) {
    if (setting === "on") throw new Error(`Kernel = on, but ${blocker}`);
    return { mode: "userspace", reason: blocker };
  }
  const mod = detectKernelWireGuard();
  if (!mod.available) {
    if (setting === "on") throw new Error(`Kernel = on, but ${mod.reason}`);
    return { mode: "userspace", reason: mod.reason };
  }
  return { mode: "kernel", reason: `${setting === "on" ? "Kernel = on" : "Kernel = auto"}: ${mod.reason}` };
}

export interface KernelUpOptions {
  name: string;
  config: QuickConfig;
  decision: KernelDecision;
  log: Logger;
  noNetwork?: boolean;
  uapiDir?: string;
  statusDir?: string;
}

export interface KernelRunningInterface {
  readonly name: string;
  readonly mode: "kernel" | "attach";
  readonly control: WireGuardControl;
  readonly beside: IceBeside | null;
  down(): Promise<void>;
  readonly closed: Promise<void>;
}

/** The control of an existing interface: the kernel's when it is a kernel link, else its UAPI socket. */
function attachControl(ifname: string, uapiDir: string): WireGuardControl {
  const rtnl = new Rtnl();
  try {
    const link = rtnl.getLink(ifname);
    if (link?.kind === "wireguard") return new KernelWireGuard(ifname);
  } finally {
    rtnl.close();
  }
  if (existsSync(join(uapiDir, `${ifname}.sock`))) return new UapiWireGuard(ifname, uapiDir);
  throw new Error(`AttachTo = ${ifname}: no kernel WireGuard interface and no UAPI socket ${join(uapiDir, `${ifname}.sock`)}`);
}

export async function upKernel(opts: KernelUpOptions): Promise<KernelRunningInterface> {
  const { name, config, log, decision } = opts;
  const iface = config.interface;
  const attach = decision.mode === "attach";
  const ifname = attach ? iface.attachTo! : name;
  const shareMode = parseShareMode(iface.portShare ?? "auto");
  const undo: (() => Promise<void>)[] = [];
  const rollback = async (): Promise<void> => {
    for (const u of undo.reverse()) await u().catch((e: unknown) => log.warn(e instanceof Error ? e.message : String(e)));
  };
  log.info(`[#] ${attach ? `attaching ICE to ${ifname}` : "kernel WireGuard"} (${decision.reason})`);

  const endpoints: (string | undefined)[] = [];
  for (const p of config.peers) endpoints.push(p.endpoint === undefined ? undefined : await resolveEndpoint(p.endpoint));

  await runHooks(iface.preUp, name, log);
  try {
    let control: WireGuardControl;
    if (attach) {
      control = attachControl(ifname, opts.uapiDir ?? DEFAULT_UAPI_DIR);
    } else {
      const rtnl = new Rtnl();
      try {
        rtnl.createLink(name, "wireguard");
      } catch (e) {
        rtnl.close();
        if ((e as { code?: string }).code === "EEXIST") throw new Error(`${name} already exists`);
        throw e;
      }
      undo.push(async () => {
        try {
          rtnl.deleteLink(name);
        } finally {
          rtnl.close();
        }
      });
      log.info(`[#] ip link add ${name} type wireguard (netlink)`);
      control = new KernelWireGuard(name);
      await control.set({
        privateKey: iface.privateKey,
        listenPort: iface.listenPort,
        fwmark: iface.fwMark,
        replacePeers: true,
        peers: config.peers.map((p, i): UapiPeerChange => {
          const change: UapiPeerChange = {
            publicKey: p.publicKey,
            remove: false,
            updateOnly: false,
            presharedKey: p.presharedKey ?? null,
            persistentKeepalive: p.persistentKeepalive ?? 0,
            replaceAllowedIps: true,
            allowedIps: p.allowedIps,
            removeAllowedIps: [],
          };
          if (endpoints[i] !== undefined) change.endpoint = endpoints[i];
          return change;
        }),
      });
      log.info(`[#] configured ${name} over netlink (${config.peers.length} peers)`);
    }
    const ctl = control;
    undo.push(async () => ctl.close());

    let network: Teardown = async () => {};
    if (!attach && !opts.noNetwork) {
      network = await setUpNetwork({
        name,
        iface,
        allowedIps: config.peers.flatMap((p) => p.allowedIps),
        endpointHosts: endpoints.flatMap((e) => (e === undefined ? [] : [e.replace(/^\[?(.*?)\]?:\d+$/u, "$1")])),
        fwmark: iface.fwMark ?? 0,
        setFwmark: (m) => ctl.set({ fwmark: m, replacePeers: false, peers: [] }),
        log,
      });
      undo.push(network);
    }

    let ice: IceStack | null = null;
    let beside: IceBeside | null = null;
    const icePeers = config.peers.filter((p) => p.endpoint === undefined).map((p) => p.publicKey);
    if (iface.signaling !== undefined && icePeers.length > 0) {
      ice = await startIce({
        settings: { signaling: iface.signaling, iceServers: iface.iceServers, candidateTypes: iface.iceCandidateTypes, portRange: iface.icePortRange },
        privateKey: iface.privateKey,
        publicKey: defaultBackend().publicKey(iface.privateKey),
        peers: icePeers,
        interfaceName: ifname,
        log,
      });
      const stack = ice;
      undo.push(() => stack.close());
      beside = await IceBeside.start({ control, manager: ice.manager, mode: shareMode, log: log.child("kernel") });
      const b = beside;
      undo.push(() => b.close());
      log.info(`[#] ICE beside ${ifname}: port sharing ${shareMode}${shareMode === "auto" ? ` (nftables: ${b.capabilities.nftables ?? "usable"}; iptables: ${b.capabilities.iptables ?? "usable"})` : ""}`);
    } else if (iface.signaling !== undefined) {
      log.info("[#] every peer has an Endpoint: no ICE");
    }

    const status = new UapiServer();
    await status.listen(name, statusHandler(control, beside, ice, decision), { dir: opts.statusDir ?? KERNEL_STATUS_DIR, logger: log });
    undo.push(() => status.close());
    await runHooks(iface.postUp, name, log);

    let downing: Promise<void> | null = null;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const down = (): Promise<void> => {
      downing ??= (async () => {
        await runHooksBestEffort(iface.preDown, name, log);
        await rollback();
        await runHooksBestEffort(iface.postDown, name, log);
        resolveClosed();
      })();
      return downing;
    };
    return { name, mode: attach ? "attach" : "kernel", control, beside, down, closed };
  } catch (err) {
    await rollback();
    throw err;
  }
}

/** The device's state with tswg's extras: who does the crypto, and per ICE peer its path and port-sharing mode. */
function statusHandler(control: WireGuardControl, beside: IceBeside | null, ice: IceStack | null, decision: KernelDecision) {
  return {
    async get(): Promise<UapiDeviceState> {
      const state = await control.get();
      state.extra = { ...state.extra, tswg_device: control.kind === "kernel" ? "kernel module" : `userspace over UAPI (${control.ifname})`, tswg_mode_reason: decision.reason };
      const shares = new Map((beside?.status() ?? []).map((s) => [s.peer, s]));
      for (const p of state.peers) {
        const k = keyToBase64(p.publicKey);
        const extra: Record<string, string> = { ...(ice?.statusExtras(k) ?? {}) };
        const s = shares.get(k);
        if (s !== undefined) extra.tswg_port_share = s.mode === null ? `none (${s.why})` : `${s.mode} (${s.why})`;
        if (Object.keys(extra).length > 0) p.extra = extra;
      }
      return state;
    },
    set: (req: Parameters<WireGuardControl["set"]>[0]) => control.set(req),
  };
}
