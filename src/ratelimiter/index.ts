export {
  DEFAULT_BURST,
  DEFAULT_GC_INTERVAL_MS,
  DEFAULT_MAX_ENTRIES,
  DEFAULT_PACKETS_PER_SECOND,
  RateLimiter,
  type Clock,
  type RateLimiterOptions,
} from "./ratelimiter.js";
