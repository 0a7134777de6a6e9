/**
 * Bringing an interface up from a wg-quick configuration and down again: the library behind
 * `tswg up` / `tswg down`, usable on its own by programs that embed tswg.
 *
 * Order of events, as wg-quick: PreUp, create the interface, configure WireGuard, addresses,
 * MTU, link up, DNS, routes, PostUp. Down: PreDown, SaveConfig, undo routes/DNS, close the
 * device (the kernel removes the interface with its addresses and routes), PostDown.
 * Anything that fails while coming up undoes what was done so far.
 */
import { writeFileSync, renameSync } from "node:fs";
import { basename, dirname } from "node:path";
import type { Bind } from "../bind/bind.js";
import { TcpBind } from "../bind/tcp.js";
import { UdpBind } from "../bind/udp.js";
import { allowedIpConflicts } from "../conf/checks.js";
import { parseEndpoint } from "../conf/values.js";
import { parseHostPort } from "../hostport/host-port.js";
import type { QuickConfig } from "../conf/wgquick.js";
import { formatConfig } from "../conf/wgquick.js";
import type { CryptoBackend } from "../crypto/backend.js";
import { Device } from "../device/device.js";
import { deviceUapiHandler } from "../device/uapi-handler.js";
import { startCounterSummary } from "../log/counter-summary.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { createLinuxTun } from "../tun/linux.js";
import type { Tun } from "../tun/tun.js";
import { UapiServer } from "../uapi/server.js";
import { defaultBackend } from "../crypto/index.js";
import { keyToBase64 } from "../crypto/keys.js";
import type { UapiHandler } from "../uapi/types.js";
import { runHooks, runHooksBestEffort } from "./hooks.js";
import { Journal, recoverCrashed } from "./journal.js";
import { startIce, type IceStack } from "./ice.js";
import { withDeviceCounters } from "./device-counters.js";
import { decideKernelMode, upKernel } from "./kernel.js";
import { checkNetworkPrerequisites, setUpNetwork, type Teardown } from "./network.js";
import { reloadDevice } from "./reload.js";
import { resolveEndpoint, resolveHostAddresses } from "./resolve.js";
import type { NetstackServices } from "./netstack.js";
import { userRuntimeDir } from "./runtime-dir.js";

export interface UpOptions {
  /** Interface name (wg-quick: the configuration file's base name). */
  name: string;
  config: QuickConfig;
  /** Where SaveConfig writes back to; without it SaveConfig is ignored with a warning. */
  configPath?: string;
  logger?: Logger;
  backend?: CryptoBackend;
  /** UAPI socket directory; default /var/run/wireguard. */
  uapiDir?: string;
  /** Skip addresses/MTU/routes/DNS (the device and its UAPI socket only). */
  noNetwork?: boolean;
  /** A packet side to use instead of a new Linux TUN (tests, embedding). */
  tun?: Tun;
  /** Transports to use instead of a UDP Bind and a TCP (UoTLV/1) Bind. */
  binds?: Bind[];
  /**
   * A directory (e.g. /run/tswg) for a record of the changes that outlive the process (policy
   * rules, DNS, the UAPI socket). With it, what a run killed before going down left behind is
   * undone by the next up() of the same name, or by {@link recoverCrashed}.
   */
  stateDir?: string;
  /** How often packets dropped since the last time are summarised at info level; 0 = never. Default 10000 ms. */
  dropSummaryMs?: number;
  /** Run on the network stack even without `Netstack =` in the file (`tswg up --netstack`). */
  netstack?: boolean;
  /** UAPI socket path (ending in .sock) instead of `uapiDir`/NAME.sock. */
  uapiPath?: string;
}

export interface RunningInterface {
  readonly name: string;
  /** Who carries the packets: the in-process device, the kernel's WireGuard, or an existing interface (AttachTo). */
  readonly mode: "userspace" | "kernel" | "attach";
  /** The in-process device; null in kernel and attach mode. */
  readonly device: Device | null;
  /** The network stack's proxies, forwards and router, when the interface runs on one. */
  readonly netstackServices: NetstackServices | null;
  /** Brings the interface down (PreDown, SaveConfig, teardown, PostDown). Idempotent. */
  down(): Promise<void>;
  /** Resolves when the interface has gone down, for whatever reason. */
  readonly closed: Promise<void>;
  /** Applies a changed configuration without dropping the tunnel (see reload.ts). */
  reload(config: QuickConfig): Promise<void>;
}

/** Device configuration from a wg-quick file; `endpoints[i]` is peer i's endpoint, resolved. */
async function configureDevice(device: Device, config: QuickConfig, endpoints: (string | undefined)[]): Promise<void> {
  const i = config.interface;
  device.setPrivateKey(i.privateKey);
  if (i.listenPort !== undefined) await device.setListenPort(i.listenPort);
  if (i.fwMark) await device.setFwmark(i.fwMark);
  for (const [i, p] of config.peers.entries()) {
    device.setPeer({
      publicKey: p.publicKey,
      presharedKey: p.presharedKey ?? null,
      endpoint: endpoints[i],
      persistentKeepalive: p.persistentKeepalive ?? 0,
      allowedIps: p.allowedIps,
      replaceAllowedIps: true,
    });
  }
}

/** The device's current state as a wg-quick file, keeping the wg-quick-only settings of `base`. */
export function currentConfig(device: Device, base: QuickConfig): QuickConfig {
  const s = device.status();
  return {
    interface: {
      ...base.interface,
      privateKey: s.privateKey ?? base.interface.privateKey,
      listenPort: s.listenPort || undefined,
      fwMark: s.fwmark || base.interface.fwMark,
    },
    peers: s.peers.map((p) => {
      let endpoint;
      if (p.transport === "ice") {
        // Reached through ICE: no Endpoint line, as in the original file.
      } else if (p.transport === "tcp") {
        // A server URL is kept; an accepted TCP connection is nothing to dial later.
        if (p.endpoint !== null && /^https?:\/\//u.test(p.endpoint)) endpoint = parseEndpoint(p.endpoint);
      } else if (p.endpoint !== null) {
        const hp = parseHostPort(p.endpoint, { minPort: 0 });
        endpoint = { host: hp.zone === "" ? hp.host : `${hp.host}%${hp.zone}`, port: hp.port };
      }
      return {
        publicKey: p.publicKey,
        presharedKey: p.presharedKey ?? undefined,
        allowedIps: p.allowedIps,
        endpoint,
        persistentKeepalive: p.persistentKeepalive || undefined,
      };
    }),
  };
}


/** Adds each ICE peer's state, selected pair, RTT and restarts to what `get` reports. */
function withIceStatus(handler: UapiHandler, ice: IceStack | null): UapiHandler {
  if (ice === null) return handler;
  return {
    async get() {
      const state = await handler.get();
      for (const p of state.peers) {
        const extra = ice.statusExtras(keyToBase64(p.publicKey));
        if (extra !== undefined) p.extra = { ...p.extra, ...extra };
      }
      return state;
    },
    set: (req) => handler.set(req),
  };
}

export async function up(opts: UpOptions): Promise<RunningInterface> {
  const log = opts.logger ?? silentLogger;
  const { name, config } = opts;
  const iface = config.interface;
  // On the network stack: no TUN, no host network changes, a per-user UAPI directory.
  const stackMode = iface.netstack ?? (opts.netstack ? "endpoint" : undefined);
  const onStack = stackMode !== undefined && opts.tun === undefined;
  const undo: (() => Promise<void>)[] = [];
  const undoAll = async () => {
    for (const u of undo.reverse()) await u().catch((e: unknown) => log.warn(e instanceof Error ? e.message : String(e)));
  };

  // Kernel mode (./kernel.ts): the kernel's WireGuard with ICE beside it, or ICE beside an existing interface.
  const decision = decideKernelMode(config, opts.tun !== undefined || opts.binds !== undefined || stackMode !== undefined);
  if (decision.mode !== "userspace") {
    const k = await upKernel({ name, config, decision, log, noNetwork: opts.noNetwork, uapiDir: opts.uapiDir });
    return {
      name,
      mode: k.mode,
      device: null,
      netstackServices: null,
      down: () => k.down(),
      closed: k.closed,
      reload: () => Promise.reject(new Error(`reload is not supported in ${k.mode} mode: take the interface down and up again`)),
    };
  }
  if (iface.kernel !== undefined || iface.signaling !== undefined) log.info(`[#] in-process WireGuard (${decision.reason})`);
  for (const w of allowedIpConflicts(config)) log.warn(w);
  // On the network stack, DNS serves the stack's proxies: nothing on the host changes.
  if (!opts.noNetwork && !onStack) checkNetworkPrerequisites(iface);

  // Resolve names first: a typo in a hostname must fail before anything changes.
  const endpoints: (string | undefined)[] = [];
  /** Addresses of UoTLV/1 server names, for the TCP Bind. */
  const tcpHosts = new Map<string, string[]>();
  for (const p of config.peers) {
    if (p.endpoint?.url !== undefined && !tcpHosts.has(p.endpoint.host)) tcpHosts.set(p.endpoint.host, await resolveHostAddresses(p.endpoint.host));
    endpoints.push(p.endpoint === undefined ? undefined : await resolveEndpoint(p.endpoint));
  }
  const endpointHosts = [
    ...endpoints.flatMap((e) => (e === undefined || e.includes("://") ? [] : [parseHostPort(e).host])),
    ...[...tcpHosts.values()].flat(),
  ];

  let journal: Journal | undefined;
  if (opts.stateDir !== undefined) {
    await recoverCrashed(opts.stateDir, name, log);
    journal = Journal.open(opts.stateDir, name);
  }
  const rollback = async () => {
    await undoAll();
    journal?.close();
  };

  try {
    await runHooks(iface.preUp, name, log);
  } catch (err) {
    journal?.close();
    throw err;
  }
  let device: Device | undefined;
  try {
    // The user-space stack and the metrics server are loaded only when configured (start-up time).
    const netstack = onStack ? await import("./netstack.js") : null;
    const stack = netstack?.createInterfaceStack(name, { ...iface, netstack: stackMode }) ?? null;
    const tun = opts.tun ?? stack?.tun ?? (await createLinuxTun(name, { mtu: iface.mtu }));
    undo.push(() => tun.close());
    // With a signaling service, peers without an Endpoint are reached through ICE.
    let ice: IceStack | null = null;
    if (iface.signaling !== undefined) {
      const icePeers = config.peers.filter((p) => p.endpoint === undefined).map((p) => p.publicKey);
      const backend = opts.backend ?? defaultBackend();
      ice = await startIce({
        settings: {
          signaling: iface.signaling,
          iceServers: iface.iceServers,
          candidateTypes: iface.iceCandidateTypes,
          portRange: iface.icePortRange,
        },
        privateKey: iface.privateKey,
        publicKey: backend.publicKey(iface.privateKey),
        peers: icePeers,
        interfaceName: name,
        log,
      });
      const stack = ice;
      undo.push(() => stack.close());
      config.peers.forEach((p, i) => {
        if (p.endpoint === undefined) endpoints[i] = stack.endpointFor(keyToBase64(p.publicKey));
      });
    }
    const binds = opts.binds ?? [new UdpBind(), new TcpBind({ listen: iface.tcpListen, hosts: tcpHosts, logger: log })];
    if (ice !== null) binds.push(ice.bind);
    device = new Device({ name, tun, binds, backend: opts.backend, logger: log, mssClamp: iface.mssClamp });
    const dev = device;
    undo.push(() => dev.close());
    await configureDevice(device, config, endpoints);

    const uapi = new UapiServer();
    const handler = withIceStatus(withDeviceCounters(deviceUapiHandler(device), device), ice);
    const uapiDir = opts.uapiPath !== undefined ? dirname(opts.uapiPath) : (opts.uapiDir ?? (onStack ? userRuntimeDir() : undefined));
    const uapiName = opts.uapiPath !== undefined ? basename(opts.uapiPath, ".sock") : name;
    await uapi.listen(uapiName, handler, { dir: uapiDir, logger: log });
    undo.push(() => uapi.close());
    if (uapi.path !== undefined) journal?.setUapiSocket(uapi.path);
    const metrics = iface.metricsListen === undefined ? null : await (await import("./metrics.js")).startMetrics(name, iface.metricsListen, handler, log);
    if (metrics !== null) undo.push(() => metrics.close());

    try {
      await device.up();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === "EADDRINUSE") throw new Error(`listen port ${iface.listenPort} is already in use`);
      throw err;
    }

    let services: NetstackServices | null = null;
    if (netstack !== null && stack !== null) {
      services = await netstack.startNetstackServices(stack, iface, log);
      const started = services;
      undo.push(() => started.close());
    }

    let network: Teardown = async () => {};
    if (!opts.noNetwork && !onStack) {
      network = await setUpNetwork({
        name,
        iface,
        allowedIps: config.peers.flatMap((p) => p.allowedIps),
        endpointHosts,
        fwmark: iface.fwMark ?? 0,
        setFwmark: (m) => dev.setFwmark(m),
        log,
        journal,
      });
    }
    undo.push(network);
    await runHooks(iface.postUp, name, log);
    const stopSummary = (opts.dropSummaryMs ?? 10_000) > 0 ? startCounterSummary({ read: () => dev.dropCounts(), log, what: "packets", intervalMs: opts.dropSummaryMs }) : () => {};

    let downing: Promise<void> | null = null;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const down = (): Promise<void> => {
      downing ??= (async () => {
        stopSummary();
        await runHooksBestEffort(iface.preDown, name, log);
        if (iface.saveConfig) saveConfig(dev, config, opts.configPath, log);
        await network();
        await metrics?.close();
        await services?.close();
        await uapi.close();
        await dev.close();
        await ice?.close();
        await runHooksBestEffort(iface.postDown, name, log);
        journal?.close();
        resolveClosed();
      })();
      return downing;
    };
    // The interface deleted from outside (`ip link del`) ends the device, as with wireguard-go.
    void dev.stopped.then(() => down());
    const iceStack = ice;
    return { name, mode: "userspace", device: dev, netstackServices: services, down, closed, reload: (next) => reloadDevice(dev, next, iceStack, log) };
  } catch (err) {
    await rollback();
    throw err;
  }
}

function saveConfig(device: Device, base: QuickConfig, path: string | undefined, log: Logger): void {
  if (path === undefined) {
    log.warn("SaveConfig is set but the configuration file is not known: not saved");
    return;
  }
  try {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, formatConfig(currentConfig(device, base)), { mode: 0o600 });
    renameSync(tmp, path);
    log.info(`[#] saved configuration to ${path}`);
  } catch (err) {
    log.warn(`cannot save configuration to ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
