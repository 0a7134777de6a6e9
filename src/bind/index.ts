export type { Bind, Endpoint, OpenResult, Received, ReceiveFunc } from "./bind.js";
export { BindClosedError } from "./errors.js";
export { EndpointParseError, formatAddrPort, parseAddrPort, type AddrPort } from "./addr-port.js";
export { ReceiveQueue } from "./receive-queue.js";
export { UdpBind, type UdpBindOptions, type UdpBindStats } from "./udp.js";
export { UdpEndpoint } from "./udp-endpoint.js";
