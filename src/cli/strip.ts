/** `tswg strip <name|file>`: print the configuration as `wg setconf` takes it (see conf/strip.ts). */
import { readFileSync } from "node:fs";
import { resolveConfigPath } from "../conf/locate.js";
import { stripConfig } from "../conf/strip.js";
import { formatConfig, parseConfig } from "../conf/wgquick.js";
import { parseArgs, wantsHelp } from "./args.js";

export const STRIP_USAGE = `Usage: tswg strip <name|file.conf>

Prints the configuration with only the keys \`wg setconf\` and \`wg syncconf\` know, like
\`wg-quick strip\`. For example: wg syncconf wg0 <(tswg strip wg0)
`;

export async function runStrip(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(STRIP_USAGE);
    return 0;
  }
  const target = parseArgs(args, { command: "strip", flags: {}, positionals: ["an interface name or configuration file"], usage: STRIP_USAGE }).positionals[0]!;
  const located = resolveConfigPath(target);
  const config = parseConfig(readFileSync(located.path, "utf8"), located.path);
  process.stdout.write(formatConfig(stripConfig(config)));
  return 0;
}
