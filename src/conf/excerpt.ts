/**
 * Quoting configuration text in error messages without leaking it or flooding the terminal:
 * whatever is on a bad line may be a private key in the wrong place (alone on a line, after the
 * wrong key, without "="), and a broken file may hold megabytes on one line, or binary bytes.
 */

/** Longest excerpt quoted, in characters. */
const MAX_EXCERPT = 48;
/** Longest message a configuration error carries, in characters. */
export const MAX_MESSAGE = 400;

/** Stands in for anything that may be (a piece of) a key. */
export const HIDDEN_KEY = "<hidden key>";

// A run of base64 characters. Runs of 20 or more are hidden when they mix upper and lower case
// (random base64 almost always does; host names and words rarely do), and at 40 or more always:
// a 44-character key mistyped in one place still leaves a run of at least 21 on one side.
const RUN = /[A-Za-z0-9+/_-]{20,}={0,2}/gu;
// Control, format, private-use and unassigned code points, and lone surrogates.
const UNPRINTABLE = /\p{C}/gu;

function keyLike(run: string): boolean {
  return run.length >= 40 || (/[a-z]/u.test(run) && /[A-Z]/u.test(run));
}

/** `text` with key-like runs replaced by {@link HIDDEN_KEY}. */
export function hideKeys(text: string): string {
  return text.replace(RUN, (run) => (keyLike(run) ? HIDDEN_KEY : run));
}

/** `text` made safe to print: keys hidden, unprintable characters as "?", at most `max` characters. */
export function sanitize(text: string, max: number): string {
  // Cut before the (linear) replacements, leaving room for a key that straddles the cut.
  const head = text.length > max + 64 ? text.slice(0, max + 64) : text;
  const clean = hideKeys(head).replace(UNPRINTABLE, "?");
  const chars = [...clean];
  return chars.length > max || head.length < text.length ? chars.slice(0, max).join("") + "…" : clean;
}

/** A short, quoted, safe excerpt of a value or line, as messages show it: `"10.0.0.300/32"`. */
export function quoted(text: string): string {
  return JSON.stringify(sanitize(text, MAX_EXCERPT));
}

/** The same without quotes, for text that is shown as it is (a section header). */
export function excerpt(text: string): string {
  return sanitize(text, MAX_EXCERPT);
}
