/** The User-Agent sent in upgrade requests: "tswg/<version of the package>". */
import { readFileSync } from "node:fs";

let cached: string | undefined;

export function defaultUserAgent(): string {
  if (cached === undefined) {
    let version = "0.0.0";
    try {
      // src/uotlv and dist/uotlv both sit two levels below the package root.
      const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "tswg" && typeof pkg.version === "string") version = pkg.version;
    } catch {
      // keep the placeholder: a missing package.json must not stop the tunnel
    }
    cached = `tswg/${version}`;
  }
  return cached;
}
