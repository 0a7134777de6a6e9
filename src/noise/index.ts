/** The WireGuard protocol as socket-free logic: what a device drives. */
export {
  Engine,
  type AddPeerOptions,
  type Clock,
  type DataPathActivity,
  type DropReason,
  type EngineEvent,
  type EngineOptions,
  type KeypairObserver,
  type Output,
  type PeerHandle,
  type PeerStats,
  type SessionKeypairs,
  type Source,
  type Transmit,
} from "./engine.js";
export * from "./constants.js";
export type { Keypair, KeypairSlots, SendCounter } from "./keypair.js";
