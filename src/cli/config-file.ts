/**
 * Finding and reading the configuration a command names (`up`, `strip`, `save`, `netcheck`):
 * a bare name is searched in /etc/tswg and /etc/wireguard, or in the directories of
 * TSWG_CONFIG_PATH (colon separated) when that is set.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_CONFIG_DIRS, resolveConfigPath, type LocatedConfig } from "../conf/locate.js";
import { parseConfig, type QuickConfig } from "../conf/wgquick.js";

export function configSearchDirs(): readonly string[] {
  const env = process.env.TSWG_CONFIG_PATH;
  const dirs = env === undefined ? [] : env.split(":").filter((d) => d !== "");
  return dirs.length > 0 ? dirs : DEFAULT_CONFIG_DIRS;
}

export function locateConfig(target: string): LocatedConfig {
  return resolveConfigPath(target, { searchDirs: configSearchDirs() });
}

/** Parses the file (errors name file, line and key). */
export function readConfig(path: string): QuickConfig {
  return parseConfig(readFileSync(path, "utf8"), path);
}
