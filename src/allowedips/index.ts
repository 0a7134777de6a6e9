export { AllowedIps } from "./allowedips.js";
export { formatIp, isMappedIPv4, IpParseError, parseIp, unmapIPv4, type IpAddress, type IpFamily } from "./ip.js";
export { formatCidr, maskPrefix, normalizeCidr, parseCidr, toPrefix, type Prefix, type PrefixInput } from "./prefix.js";
