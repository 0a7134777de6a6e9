export {
  TAI64N_LENGTH,
  WHITENER_MASK,
  after,
  compare,
  fromMillis,
  toMillis,
  whiten,
  whitenedFromMillis,
} from "./tai64n.js";
