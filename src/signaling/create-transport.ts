/**
 * Picks the signaling backend for a URL, as written in configuration (`Signaling = ...`):
 *   ws://host:port[/path], wss://host:port[/path]  the embedded server (`tswg signal`)
 *   nats://host:port[,nats://host2:port...]         NATS (tls:// for NATS over TLS)
 *   memory://name                                   an in-process hub, for tests
 */
import { readPemFile } from "../pem/pem-file.js";
import type { Logger } from "../log/logger.js";
import { SignalingUrlError } from "./errors.js";
import { MemoryHub } from "./memory.js";
import { NatsTransport } from "./nats.js";
import type { SignalingTransport } from "./types.js";
import { WebSocketTransport } from "./ws-client.js";

export interface CreateTransportOptions {
  /** This host's WireGuard private key; ws:// and wss:// need it to prove key ownership. */
  privateKey?: Uint8Array;
  /** PEM CA certificates for wss:// and NATS tls:// instead of the system's. */
  ca?: string;
  /** A file with such certificates (read once, now). */
  caFile?: string;
  logger?: Logger;
  /** How long open() waits for the service. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** How long send() waits while disconnected. Default 5000 ms. */
  sendWaitMs?: number;
  /** NATS subject prefix. Default "tswg.signal". */
  subjectPrefix?: string;
  /** The hub for memory:// URLs (default: the process-wide hub of that name). */
  memoryHub?: MemoryHub;
}

export const SIGNALING_SCHEMES = ["ws", "wss", "nats", "tls", "memory"] as const;

/** A transport for `url`; throws {@link SignalingUrlError} for URLs no backend takes. Does not connect yet. */
export function createTransport(url: string, opts: CreateTransportOptions = {}): SignalingTransport {
  const text = url.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text);
  if (m === null) throw new SignalingUrlError(`signaling URL ${JSON.stringify(text)} has no scheme (expected ws://, wss://, nats:// or memory://)`);
  const scheme = m[1]!.toLowerCase();
  const ca = () => opts.ca ?? readCa(opts.caFile);
  switch (scheme) {
    case "ws":
    case "wss": {
      if (text.includes(",")) throw new SignalingUrlError("ws:// and wss:// signaling take a single URL");
      if (opts.privateKey === undefined) throw new Error("ws:// and wss:// signaling need the interface's private key");
      return new WebSocketTransport({
        url: text,
        privateKey: opts.privateKey,
        ca: ca(),
        logger: opts.logger,
        connectTimeoutMs: opts.connectTimeoutMs,
        sendWaitMs: opts.sendWaitMs,
      });
    }
    case "nats":
    case "tls":
      return new NatsTransport({
        servers: text,
        ca: ca(),
        logger: opts.logger,
        connectTimeoutMs: opts.connectTimeoutMs,
        sendWaitMs: opts.sendWaitMs,
        subjectPrefix: opts.subjectPrefix,
      });
    case "memory": {
      const name = /^memory:(?:\/\/)?([A-Za-z0-9._-]*)\/?$/i.exec(text)?.[1];
      if (name === undefined) throw new SignalingUrlError(`memory signaling URLs look like memory://name, got ${JSON.stringify(text)}`);
      const hub = opts.memoryHub ?? MemoryHub.named(name);
      return hub.transport({ connectTimeoutMs: opts.connectTimeoutMs, sendWaitMs: opts.sendWaitMs });
    }
    default:
      throw new SignalingUrlError(`unknown signaling URL scheme "${scheme}:" in ${JSON.stringify(text)} (expected ws://, wss://, nats:// or memory://)`);
  }
}

function readCa(file: string | undefined): string | undefined {
  return file === undefined ? undefined : readPemFile(file, `signaling CA file ${file}`, "CERTIFICATE");
}
