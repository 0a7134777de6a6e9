/** Signaling: sealed, peer-filtered message exchange between WireGuard keys, over pluggable transports. */
export type { SignalingChannel, SignalingMessage, SignalingTransport } from "./types.js";
export {
  CHANNEL_DROP_REASONS,
  MAX_BLOB_BYTES,
  SealedChannel,
  type ChannelDropReason,
  type ChannelStats,
  type DropListener,
  type MessageListener,
  type SealedChannelOptions,
} from "./channel.js";
export {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_REORDER_WINDOW_MS,
  ENVELOPE_HEADER_LENGTH,
  ENVELOPE_OVERHEAD,
  ENVELOPE_VERSION,
  EnvelopeCodec,
  parseEnvelopeHeader,
  type EnvelopeDropReason,
  type EnvelopeHeader,
  type EnvelopeOptions,
  type OpenResult,
} from "./envelope.js";
export { ReplayWindow, compareCounters, type Counter } from "./replay-window.js";
export { MAX_MESSAGE_BYTES, checkMessage, decodeMessage, encodeMessage } from "./message.js";
export { SignalingClosedError, SignalingMessageError, SignalingUnavailableError, SignalingUrlError } from "./errors.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { MemoryHub, MemoryTransport, type MemoryHubOptions, type MemoryHubStats, type MemoryTransportOptions } from "./memory.js";
export { SignalingServer, type SignalingServerOptions, type SignalingServerStats } from "./ws-server.js";
export { WebSocketTransport, parseWebSocketUrl, type WebSocketTransportOptions } from "./ws-client.js";
export { DEFAULT_SUBJECT_PREFIX, NatsTransport, parseNatsUrls, type NatsServers, type NatsTransportOptions } from "./nats.js";
export { SIGNALING_SCHEMES, createTransport, type CreateTransportOptions } from "./create-transport.js";
