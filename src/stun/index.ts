export { isChannelData, isIceTraffic, isStunMessage, STUN_MAGIC_COOKIE, stunClass, stunTransactionId, stunUsername, type StunClass } from "./classify.js";
export type { PacketListener, PacketSocket } from "./packet-socket.js";
