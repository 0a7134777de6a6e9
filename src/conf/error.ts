import { MAX_MESSAGE, sanitize } from "./excerpt.js";

/** Where a configuration problem is; every field is optional except the file. */
export interface ConfigErrorLocation {
  /** The file name as given to the parser (e.g. "wg0.conf"). */
  file: string;
  /** 1-based line number; absent when the problem is not on one line (e.g. a missing section). */
  line?: number;
  /** The section the problem is in, without brackets ("Interface", "Peer"). */
  section?: string;
  /** The key concerned, in its canonical spelling when it is a known key. */
  key?: string;
}

/**
 * A configuration file that cannot be used. The message reads like
 * `wg0.conf:7: [Peer] AllowedIPs: "10.0.0.300/32" is not a valid IP prefix`.
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly section: string | undefined;
  readonly key: string | undefined;
  /** The problem alone, without the location. */
  readonly reason: string;

  constructor(where: ConfigErrorLocation, problem: string) {
    // The last line of defence: whatever a value parser quoted, no key and no flood gets out.
    const reason = sanitize(problem, MAX_MESSAGE);
    const place = [where.section === undefined ? "" : `[${where.section}]`, where.key ?? ""].filter((s) => s !== "").join(" ");
    super(`${where.file}${where.line === undefined ? "" : `:${where.line}`}: ${place === "" ? "" : `${place}: `}${reason}`);
    this.name = "ConfigError";
    this.file = where.file;
    this.line = where.line;
    this.section = where.section;
    this.key = where.key;
    this.reason = reason;
  }
}
