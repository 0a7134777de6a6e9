/** `tswg strip <name|file>`: print the configuration as `wg setconf` takes it (see conf/strip.ts). */
import { stripConfig } from "../conf/strip.js";
import { formatConfig } from "../conf/wgquick.js";
import { parseArgs, wantsHelp } from "./args.js";
import { locateConfig, readConfig } from "./config-file.js";

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
  process.stdout.write(formatConfig(stripConfig(readConfig(locateConfig(target).path))));
  return 0;
}
