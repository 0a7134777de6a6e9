/** The WireGuard protocol as socket-free logic: what a device drives. */
export {
  Engine,
  type AddPeerOptions,
  type Clock,
  type DropReason,
  type EngineEvent,
  type EngineOptions,
  type Output,
  type PeerHandle,
  type PeerStats,
  type Source,
  type Transmit,
} from "./engine.js";
export * from "./constants.js";
export type { Keypair, KeypairSlots } from "./keypair.js";
