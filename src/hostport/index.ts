export { formatHostPort, HostPortError, parseHostPort, type HostPort, type HostPortRules } from "./host-port.js";
