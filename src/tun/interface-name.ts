/**
 * Linux network interface names, checked before they reach the kernel or `ip` so that a bad
 * name gives a message that says what is wrong with it.
 */

/** IFNAMSIZ is 16 bytes including the terminating NUL. */
export const MAX_INTERFACE_NAME_BYTES = 15;

/**
 * Why `name` is not a valid interface name, or null if it is. With `allowTemplate`, one "%d"
 * may stand for a number the kernel picks ("tswg%d" becomes "tswg0", "tswg1"…).
 */
export function interfaceNameProblem(name: string, allowTemplate = false): string | null {
  if (name.length === 0) return "it is empty";
  const bytes = Buffer.byteLength(name, "utf8");
  if (bytes > MAX_INTERFACE_NAME_BYTES) {
    return `it is ${bytes} bytes long, at most ${MAX_INTERFACE_NAME_BYTES} are allowed`;
  }
  if (name === "." || name === "..") return "it is a path component";
  // The kernel refuses these (dev_valid_name): they would break /sys/class/net paths and
  // the "name:alias" syntax.
  if (/[/:\s\0]/u.test(name)) return "it contains '/', ':', a NUL or white space";
  const percents = name.split("%").length - 1;
  if (percents > 0) {
    if (!allowTemplate) return "it contains '%'";
    if (percents > 1 || !name.includes("%d")) return "only one \"%d\" may be used as a template";
  }
  return null;
}

/** Throws an Error naming the problem when `name` is not a valid interface name. */
export function checkInterfaceName(name: string, allowTemplate = false): void {
  const problem = interfaceNameProblem(name, allowTemplate);
  if (problem !== null) throw new Error(`invalid interface name ${JSON.stringify(name)}: ${problem}`);
}
