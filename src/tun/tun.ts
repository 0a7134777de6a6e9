/**
 * The packet side of a WireGuard device: where plaintext IP packets come from and go to.
 *
 * Shaped after wireguard-go's tun.Device, in async form: `read` resolves with a batch of
 * whole IP packets (at most `batchSize()`), `write` takes a batch. Implementations: a Linux
 * TUN device (native addon) and an in-memory pair for tests.
 */
import type { EventEmitter } from "node:events";

export type TunEvent = "up" | "down" | "mtu";

export interface Tun {
  /** Interface name, e.g. "wg0". */
  readonly name: string;
  /** Current MTU of the interface. */
  mtu(): number;
  /** Most packets one `read` may return and one `write` should carry. */
  batchSize(): number;
  /**
   * Resolves with 1..batchSize() packets, each a complete IP packet (no header or prefix).
   * Resolves with `null` once the device is closed (or its interface is gone); never rejects on
   * transient errors. The packets belong to the caller, but may be views into one shared
   * buffer: modify them in place within their own bounds only.
   */
  read(): Promise<Uint8Array[] | null>;
  /**
   * Writes complete IP packets. Packets the kernel refuses are dropped and counted, not thrown.
   * The buffers are copied (or written out) before the call returns, so they may be reused then.
   */
  write(packets: Uint8Array[]): Promise<void>;
  /**
   * Emits "up", "down" and "mtu" (with the new MTU). The initial link state is emitted once,
   * asynchronously after creation, so a listener attached right away learns it.
   */
  readonly events: EventEmitter;
  /** Closes the device; pending and later reads resolve with null. Idempotent. */
  close(): Promise<void>;
}
