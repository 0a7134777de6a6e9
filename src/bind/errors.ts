/** Errors shared by every Bind. */

/** Sending on a Bind that is not open (never opened, or closed). */
export class BindClosedError extends Error {
  constructor(kind: string) {
    super(`${kind} bind is not open`);
    this.name = "BindClosedError";
  }
}
