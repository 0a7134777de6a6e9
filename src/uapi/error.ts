/**
 * Errors of the UAPI configuration protocol.
 *
 * A failed request is answered with `errno=-N`, N being a Linux errno value; the `wg` tool turns
 * it back into a message such as "Invalid argument". The classes below are the ones the
 * reference userspace implementation uses, so `wg` reports the same thing for the same mistake.
 */

/** Positive Linux errno values; the reply carries them negated. */
export const UapiErrno = {
  /** Reading the request or writing the reply failed. */
  IO: 5,
  /** A key or value is not acceptable (unknown key, malformed number, key or address). */
  INVALID: 22,
  /** The request does not follow the framing (a line without "=", an unknown operation). */
  PROTOCOL: 71,
  /** The request exceeds the server's size limits. */
  TOO_LARGE: 90,
  /** The listen port cannot be bound, or the fwmark cannot be applied. */
  PORT_IN_USE: 98,
  /** Anything else: a handler failed with an error that is not a {@link UapiError}. */
  UNKNOWN: 55,
} as const;

export type UapiErrnoValue = (typeof UapiErrno)[keyof typeof UapiErrno];

/** A request failed; `errno` (positive) is sent back to the client as `errno=-<errno>`. */
export class UapiError extends Error {
  readonly errno: number;

  constructor(errno: number, message: string) {
    super(message);
    if (!Number.isInteger(errno) || errno <= 0) throw new RangeError(`UAPI errno must be a positive integer, got ${errno}`);
    this.name = "UapiError";
    this.errno = errno;
  }
}
