/**
 * Which data path the user asked for, from the environment: TSWG_DATAPATH=portable keeps every
 * packet in TypeScript (node:dgram sockets, the engine's own crypto); TSWG_DATAPATH=native insists
 * on the native one (an error where it is unavailable); unset or "auto" takes the native path
 * when the addon provides it and falls back otherwise.
 */
export const DATAPATH_ENV = "TSWG_DATAPATH";

export type DataPathPreference = "auto" | "native" | "portable";

export function dataPathPreference(env: NodeJS.ProcessEnv = process.env): DataPathPreference {
  const v = (env[DATAPATH_ENV] ?? "").trim().toLowerCase();
  if (v === "native" || v === "portable") return v;
  if (v === "" || v === "auto") return "auto";
  throw new Error(`${DATAPATH_ENV}=${env[DATAPATH_ENV]} is not one of auto, native, portable`);
}
