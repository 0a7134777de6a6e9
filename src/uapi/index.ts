/** The UAPI configuration protocol spoken by the `wg` tool: types, text format and socket server. */
export { UapiErrno, UapiError, type UapiErrnoValue } from "./error.js";
export { formatGet, formatStatus, parseEndpoint, parseSet } from "./protocol.js";
export { DEFAULT_UAPI_DIR, UapiServer, validateInterfaceName, type UapiServerOptions } from "./server.js";
export type { UapiDeviceState, UapiHandler, UapiPeerChange, UapiPeerState, UapiSetRequest } from "./types.js";
