import { describe, expect, it } from "vitest";
import { formatExposition } from "../../src/metrics/exposition.js";
import { signalingMetrics } from "../../src/metrics/signaling.js";
import { interfaceMetrics } from "../../src/metrics/wireguard.js";
import { deviceExtraView, parsePair, peerExtraView } from "../../src/uapi/tswg-status.js";
import type { UapiDeviceState } from "../../src/uapi/types.js";

const key = (b: number) => new Uint8Array(32).fill(b);

describe("tswg_* status keys", () => {
  it("reads an ICE peer's state, pair, RTT and restarts; relay on either side means a relayed path", () => {
    const v = peerExtraView({
      tswg_transport: "ice",
      tswg_endpoint: "ice:abc",
      tswg_ice_state: "connected",
      tswg_ice_restarts: "2",
      tswg_ice_pair: "host 10.0.0.1:4000 -> relay [2001:db8::1]:3478",
      tswg_ice_rtt: "12.5 ms",
      tswg_drops_no_route: "3",
      tswg_future_key: "x",
    });
    expect(v).toMatchObject({ transport: "ice", endpoint: "ice:abc", path: "relay", drops: { no_route: 3 }, other: { tswg_future_key: "x" } });
    expect(v.ice).toEqual({ state: "connected", restarts: 2, rttMs: 12.5, pair: { local: { type: "host", address: "10.0.0.1", port: 4000 }, remote: { type: "relay", address: "2001:db8::1", port: 3478 } } });
    expect(peerExtraView({ tswg_ice_state: "checking" }).transport).toBe("ice");
    expect(peerExtraView({ tswg_ice_state: "checking" }).path).toBeUndefined();
    expect(peerExtraView({ tswg_transport: "tcp" }).path).toBe("tcp");
    expect(peerExtraView(undefined)).toMatchObject({ transport: "udp", path: "direct" });
    expect(parsePair("nonsense")).toBeUndefined();
    // A malformed number is kept as text, not turned into NaN.
    expect(peerExtraView({ tswg_ice_restarts: "many" }).other).toEqual({ tswg_ice_restarts: "many" });
  });

  it("reads the device's data path, crypto, cookie mode and drops", () => {
    expect(deviceExtraView({ tswg_data_path: "native", tswg_crypto: "openssl", tswg_cookie_mode: "true", tswg_drop_bad_mac: "4" })).toEqual({
      dataPath: "native",
      crypto: "openssl",
      cookieMode: true,
      drops: { bad_mac: 4 },
      other: {},
    });
  });
});

describe("Prometheus exposition", () => {
  it("escapes label values and declares each family once", () => {
    const text = formatExposition([{ name: "x_total", help: "a\nb", type: "counter", samples: [{ labels: { l: 'q"\\\n' }, value: 1 }, { labels: {}, value: 2 }] }]);
    expect(text).toBe('# HELP x_total a\\nb\n# TYPE x_total counter\nx_total{l="q\\"\\\\\\n"} 1\nx_total 2\n');
    expect(() => formatExposition([{ name: "bad name", help: "", type: "gauge", samples: [] }])).toThrow(/invalid metric name/);
  });

  it("names the wireguard exporter's metrics as it does, and tswg's own as tswg_*", () => {
    const state: UapiDeviceState = {
      listenPort: 1,
      fwmark: 0,
      extra: { tswg_data_path: "portable", tswg_crypto: "node" },
      peers: [
        { publicKey: key(1), allowedIps: ["10.0.0.2/32", "10.1.0.0/16"], lastHandshakeMs: 1_700_000_000_500, txBytes: 10n, rxBytes: 20n, persistentKeepalive: 0, protocolVersion: 1, extra: { tswg_ice_state: "connected", tswg_ice_restarts: "1", tswg_ice_pair: "srflx 1.2.3.4:5 -> host 5.6.7.8:9", tswg_ice_rtt: "2.0 ms" } },
      ],
    };
    const text = formatExposition(interfaceMetrics("wg0", state));
    const pk = Buffer.from(key(1)).toString("base64");
    const base = `interface="wg0",public_key="${pk}",allowed_ips="10.0.0.2/32,10.1.0.0/16"`;
    expect(text).toContain(`wireguard_sent_bytes_total{${base}} 10\n`);
    expect(text).toContain(`wireguard_received_bytes_total{${base}} 20\n`);
    expect(text).toContain(`wireguard_latest_handshake_seconds{${base}} 1700000000\n`);
    expect(text).toContain(`tswg_peer_path_info{interface="wg0",public_key="${pk}",transport="ice",path="direct",local_candidate="srflx",remote_candidate="host"} 1\n`);
    expect(text).toContain(`tswg_peer_ice_state{interface="wg0",public_key="${pk}",state="connected"} 1\n`);
    expect(text).toContain(`tswg_peer_ice_state{interface="wg0",public_key="${pk}",state="failed"} 0\n`);
    expect(text).toContain(`tswg_peer_rtt_seconds{interface="wg0",public_key="${pk}"} 0.002\n`);
    expect(text).toContain('tswg_interface_info{interface="wg0",data_path="portable",crypto="node"} 1\n');
  });

  it("exposes the signaling server's counters", () => {
    const text = formatExposition(
      signalingMetrics({ connections: 3, subscribedKeys: 2, routed: 7, held: 1, heldBytes: 100, droppedRateLimited: 0, droppedNoRecipient: 4, droppedSlowConsumer: 0, protocolErrors: 5, refusedConnections: 6, handshakeTimeouts: 2 }),
    );
    expect(text).toContain("tswg_signal_connections 3\n");
    expect(text).toContain("tswg_signal_messages_routed_total 7\n");
    expect(text).toContain('tswg_signal_messages_dropped_total{reason="no_recipient"} 4\n');
    expect(text).toContain("tswg_signal_rejects_total 5\n");
    expect(text).toContain("tswg_signal_refused_connections_total 6\n");
    expect(text).toContain("tswg_signal_handshake_timeouts_total 2\n");
  });
});
