export { PeerAgent, type IceAgentState, type IcePath, type PeerAgentOptions, type PeerAgentStatus, type SelectedPair } from "./agent.js";
export { IceGeneration, pathRank } from "./generation.js";
export type { LaneKind } from "./session.js";
export {
  CANDIDATE_TYPES,
  CandidateFilterError,
  interfaceExcluded,
  parseCandidateTypes,
  parsePortRange,
  parseRemoteCandidate,
  selectHostAddresses,
  type CandidateInfo,
  type CandidateType,
  type HostAddressOptions,
  type NetworkInterfaceMap,
} from "./candidates.js";
export { IceConfigError, MAX_TURN_SERVERS, currentHostAddresses, watchedAddresses, resolveIceConfig, type IceAgentConfig, type IceBackoffOptions, type ResolvedIceConfig } from "./config.js";
export { IceManager, type IceManagerOptions, type IceManagerStats, type PeerKey } from "./manager.js";
export { compareKeys, iceRole, type IceRole } from "./role.js";
export {
  IceServerUrlError,
  parseIceServer,
  parseIceServers,
  selectIceServers,
  type IceServer,
  type IceServerScheme,
  type IceServerSpec,
  type SelectedServers,
  type TurnTransport,
} from "./servers.js";
