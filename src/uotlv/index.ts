/** UoTLV/1: WireGuard over TCP, wire-compatible with eduVPN's ProxyGuard. */
export { Backoff } from "./backoff.js";
export { UotlvClient, type UotlvClientOptions, type UotlvClientState, type UotlvClientStats } from "./client.js";
export { UotlvConnection, type UotlvConnectionHandlers, type UotlvConnectionOptions, type UotlvConnectionStats } from "./connection.js";
export * from "./constants.js";
export { dialUotlv, type DialOptions } from "./dial.js";
export { encodeFrames, FrameDecoder, FrameError, framedLength } from "./frame.js";
export {
  checkUpgradeResponse,
  formatErrorResponse,
  formatSwitchingResponse,
  formatUpgradeRequest,
  judgeUpgradeRequest,
  UpgradeError,
  type UpgradeVerdict,
} from "./handshake.js";
export { HeadError, HeadReader, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from "./http-head.js";
export { parseListenAddress, formatListenAddress, type ListenAddress } from "./listen-address.js";
export { ProxyguardClient, type ProxyguardClientOptions } from "./proxy-client.js";
export { ProxyguardServer, type ProxyguardServerOptions, type ProxyguardServerStats } from "./proxy-server.js";
export { UotlvServer, type UotlvServerOptions, type UotlvServerStats, type UpgradeInfo } from "./server.js";
export { connectMarked, socketMarkUnsupportedReason, type MarkedConnectOptions } from "./socket-mark.js";
export { systemCaPem } from "./system-ca.js";
export { looksLikeUrl, parseTunnelUrl, TunnelUrlError, type TunnelUrl } from "./url.js";
