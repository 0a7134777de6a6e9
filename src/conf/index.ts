/** wg-quick style configuration files: parsing, writing and locating them. */
export { ConfigError, type ConfigErrorLocation } from "./error.js";
export { ConfigLocateError, DEFAULT_CONFIG_DIRS, resolveConfigPath, type LocatedConfig, type LocateOptions } from "./locate.js";
export { formatEndpoint, formatTable, ValueError } from "./values.js";
export { formatConfig, parseConfig, type Endpoint, type QuickConfig, type QuickInterface, type QuickPeer, type RouteTable } from "./wgquick.js";
