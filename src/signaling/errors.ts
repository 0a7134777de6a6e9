/** Errors the signaling layer reports to its callers. Bad input from the network is dropped, never thrown. */

/** The signaling service was not reachable within the time allowed; the transport keeps retrying. */
export class SignalingUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignalingUnavailableError";
  }
}

/** The transport or channel was closed by its owner. */
export class SignalingClosedError extends Error {
  constructor(message = "signaling transport is closed") {
    super(message);
    this.name = "SignalingClosedError";
  }
}

/** A signaling URL (e.g. the `Signaling` setting) that no backend accepts. */
export class SignalingUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignalingUrlError";
  }
}

/** A {@link SignalingMessage} that does not satisfy the message rules (caller bug on send). */
export class SignalingMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignalingMessageError";
  }
}
