/**
 * What sockets and servers need from their stack: the native calls, event routing by id, and
 * keeping the process alive while they are open.
 */
import type { NativeStack, StackEvent } from "./addon.js";

export interface StackHandle {
  readonly native: NativeStack;
  register(id: number, sink: (e: StackEvent) => void): void;
  unregister(id: number): void;
  /** One more open handle: the process stays alive while any is held (like an open socket). */
  hold(): void;
  release(): void;
}
