/**
 * What every transport shares: the connected flag with its "connected"/"disconnected" events, and
 * waiting (bounded) for a connection, which both open() and send() use.
 */
import { EventEmitter } from "node:events";

export type TransportEvent = "connected" | "disconnected";

export abstract class TransportBase {
  private readonly events = new EventEmitter();
  private isConnected = false;
  private isClosed = false;

  /** True while connected to the service. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** True once close() has been called. */
  get closed(): boolean {
    return this.isClosed;
  }

  on(event: TransportEvent, listener: () => void): this {
    this.events.on(event, listener);
    return this;
  }

  off(event: TransportEvent, listener: () => void): this {
    this.events.off(event, listener);
    return this;
  }

  protected setConnected(value: boolean): void {
    if (value === this.isConnected || (value && this.isClosed)) return;
    this.isConnected = value;
    this.emitSafely(value ? "connected" : "disconnected");
  }

  protected markClosed(): void {
    this.isClosed = true;
    this.setConnected(false);
    // Wake anyone waiting for a connection that will now never come.
    this.events.emit("closed");
  }

  /** Resolves true once connected (at once if already), false after `ms` or when closed first. */
  protected waitConnected(ms: number): Promise<boolean> {
    if (this.isConnected) return Promise.resolve(true);
    if (this.isClosed || ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean): void => {
        clearTimeout(timer);
        this.events.off("connected", onConnected);
        this.events.off("closed", onClosed);
        resolve(value);
      };
      const onConnected = (): void => done(true);
      const onClosed = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.events.on("connected", onConnected);
      this.events.on("closed", onClosed);
    });
  }

  // A throwing listener must not break the transport's own state handling.
  private emitSafely(event: TransportEvent): void {
    for (const l of this.events.listeners(event)) {
      try {
        (l as () => void)();
      } catch {
        // listeners own their errors
      }
    }
  }
}
