/**
 * Joins two byte streams both ways, half-closes included; an error or reset on one side
 * destroys the other. Resolves when both are closed.
 */
import type { Duplex } from "node:stream";

export function splice(a: Duplex, b: Duplex): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) resolve();
    };
    const fail = (other: Duplex) => () => {
      if (!other.destroyed) other.destroy();
    };
    a.once("close", onClose);
    b.once("close", onClose);
    a.on("error", fail(b));
    b.on("error", fail(a));
    a.once("close", () => !b.writableFinished && !b.destroyed && b.destroy());
    b.once("close", () => !a.writableFinished && !a.destroyed && a.destroy());
    a.pipe(b);
    b.pipe(a);
  });
}
