/**
 * Where an unprivileged interface keeps its run-time files (UAPI socket, state). A leaf of its own
 * so that commands needing only the path do not load the user-space network stack.
 */
import { join } from "node:path";

/** $XDG_RUNTIME_DIR/tswg, else /tmp/tswg-UID. */
export function userRuntimeDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg !== undefined && xdg !== "") return join(xdg, "tswg");
  return join("/tmp", `tswg-${process.getuid?.() ?? 0}`);
}
