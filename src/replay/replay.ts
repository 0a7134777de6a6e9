/**
 * Sliding-window replay protection for transport-data counters (RFC 6479's bitmap scheme).
 *
 * The window is a ring of 32-bit words. Advancing to a higher counter only clears the words the
 * window slides over, so the cost of a jump is bounded by the ring size however far it goes, and
 * one word is always kept spare so the oldest in-window counters never share a word with new ones.
 */

const WORD_BITS = 32;
const RING_WORDS = 256; // a power of two, so that ring positions stay cheap to compute
/**
 * How far below the highest accepted counter a counter may still arrive: 8128, as in
 * wireguard-go and in the native data plane (native/src/replay.h), so a packet is accepted or
 * refused alike whichever plane opens it. It fits the ring with more than one word to spare.
 */
export const REPLAY_WINDOW_SIZE = 8128;

/**
 * Counters are 64-bit on the wire but held here as JS numbers. Values from 2^53 up are refused:
 * they cannot be represented exactly, and no session reaches them — WireGuard rekeys after 2^60
 * messages in theory, but even at 10^8 packets/s 2^53 takes almost three years, far beyond the
 * 180-second key lifetime.
 */
export const MAX_REPLAY_COUNTER = Number.MAX_SAFE_INTEGER;

export class ReplayFilter {
  private readonly ring = new Uint32Array(RING_WORDS);
  private last = 0;

  /**
   * Accepts `counter` (and records it as seen) unless it was seen before, has fallen out of the
   * window, is at or beyond `limit` (the caller's REJECT_AFTER_MESSAGES), or is not an integer in
   * 0..2^53-1. Callers converting a 64-bit counter to a number may pass any value >= 2^53 for an
   * out-of-range counter: rounding keeps it >= 2^53, so it is refused.
   */
  check(counter: number, limit: number): boolean {
    if (!Number.isSafeInteger(counter) || counter < 0 || !(counter < limit)) return false;
    const word = Math.floor(counter / WORD_BITS);
    if (counter > this.last) {
      const lastWord = Math.floor(this.last / WORD_BITS);
      const advance = Math.min(word - lastWord, RING_WORDS);
      for (let i = 1; i <= advance; i++) this.ring[(lastWord + i) % RING_WORDS] = 0;
      this.last = counter;
    } else if (this.last - counter > REPLAY_WINDOW_SIZE) {
      return false;
    }
    const index = word % RING_WORDS;
    const bit = 1 << (counter - word * WORD_BITS);
    if ((this.ring[index] & bit) !== 0) return false;
    this.ring[index] |= bit;
    return true;
  }

  /** Forgets every counter seen, as for a fresh key. */
  reset(): void {
    this.last = 0;
    this.ring.fill(0);
  }
}
