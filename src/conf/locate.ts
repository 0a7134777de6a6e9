/**
 * Finding the configuration file for `tswg up <name-or-path>`, with wg-quick's rules: a bare
 * interface name is looked up in the configuration directories, anything that looks like a path
 * is used as it is, and the interface is named after the file.
 */
import { statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";

/** tswg's own directory first, so a tswg-only file can shadow one shared with wg-quick. */
export const DEFAULT_CONFIG_DIRS: readonly string[] = ["/etc/tswg", "/etc/wireguard"];

const IFACE_NAME = /^[a-zA-Z0-9_=+.-]{1,15}$/;

export interface LocatedConfig {
  /** Absolute path of the file. */
  path: string;
  /** The file's base name without ".conf". */
  interfaceName: string;
  /** Others may read the file (wg-quick warns about this: it holds a private key). */
  worldAccessible: boolean;
}

/** The configuration file could not be found or is not named after a valid interface. */
export class ConfigLocateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigLocateError";
  }
}

export interface LocateOptions {
  /** Directories searched for a bare name, in order; default {@link DEFAULT_CONFIG_DIRS}. */
  searchDirs?: readonly string[];
}

/** Resolves a bare interface name or a path to the configuration file to use. */
export function resolveConfigPath(nameOrPath: string, options: LocateOptions = {}): LocatedConfig {
  const looksLikePath = nameOrPath.includes("/") || nameOrPath.endsWith(".conf");
  if (looksLikePath) {
    const path = resolve(nameOrPath);
    const name = basename(path);
    if (!name.endsWith(".conf") || !IFACE_NAME.test(name.slice(0, -".conf".length))) {
      throw new ConfigLocateError(
        `${JSON.stringify(nameOrPath)}: the file must be named <interface>.conf, where <interface> is 1-15 characters from a-z A-Z 0-9 _ = + . -`,
      );
    }
    if (!isFile(path)) throw new ConfigLocateError(`configuration file ${path} does not exist or is not a file`);
    return located(path);
  }
  if (!IFACE_NAME.test(nameOrPath)) {
    throw new ConfigLocateError(
      `${JSON.stringify(nameOrPath)} is neither an interface name (1-15 characters from a-z A-Z 0-9 _ = + . -) nor a path to a .conf file`,
    );
  }
  const dirs = options.searchDirs ?? DEFAULT_CONFIG_DIRS;
  const candidates = dirs.map((d) => resolve(d, `${nameOrPath}.conf`));
  const found = candidates.find(isFile);
  if (found === undefined) {
    throw new ConfigLocateError(`no configuration for interface ${nameOrPath}: looked for ${candidates.join(", ")}`);
  }
  return located(found);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function located(path: string): LocatedConfig {
  const fileMode = statSync(path).mode;
  const dirMode = statSync(dirname(path)).mode;
  return {
    path,
    interfaceName: basename(path).slice(0, -".conf".length),
    // As wg-quick judges it: the file and its directory both grant something to others.
    worldAccessible: (fileMode & dirMode & 0o007) !== 0,
  };
}
