/**
 * The named crypto backends. Built-in ones are registered here; further ones (such as the native
 * addon) call {@link registerBackend}. Instances are created on first use and then shared, since a
 * backend may hold caches worth keeping.
 */
import type { CryptoBackend } from "./backend.js";
import { nativeBackendFactory } from "./native.js";
import { createNodeBackend } from "./node.js";
import { createStablelibBackend } from "./stablelib.js";

export type BackendFactory = () => CryptoBackend;

/** Environment variable naming the backend {@link defaultBackend} returns. */
export const CRYPTO_BACKEND_ENV = "TSWG_CRYPTO";
export const DEFAULT_BACKEND_NAME = "node";

/** Registered backend factories by name. Prefer {@link registerBackend} to writing here directly. */
export const backends: Record<string, BackendFactory> = {
  node: createNodeBackend,
  stablelib: createStablelibBackend,
};
// Only where the addon loads, so that iterating the registry works without a build.
const nativeFactory = nativeBackendFactory();
if (nativeFactory !== null) backends.native = nativeFactory;

const instances = new Map<string, CryptoBackend>();

/** Adds (or replaces) a backend; a replaced one is created afresh on its next use. */
export function registerBackend(name: string, factory: BackendFactory): void {
  if (name.length === 0) throw new Error("backend name must not be empty");
  backends[name] = factory;
  instances.delete(name);
}

export function backendNames(): string[] {
  return Object.keys(backends);
}

/** The backend registered as `name` (default: {@link defaultBackend}'s choice). */
export function getBackend(name?: string): CryptoBackend {
  const wanted = name ?? defaultBackendName();
  let instance = instances.get(wanted);
  if (instance === undefined) {
    const factory = Object.hasOwn(backends, wanted) ? backends[wanted] : undefined;
    if (factory === undefined) {
      throw new Error(`unknown crypto backend "${wanted}" (known: ${backendNames().join(", ")})`);
    }
    instance = factory();
    instances.set(wanted, instance);
  }
  return instance;
}

function defaultBackendName(): string {
  const fromEnv = process.env[CRYPTO_BACKEND_ENV];
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_BACKEND_NAME;
}

/** "node", unless the environment variable TSWG_CRYPTO names another registered backend. */
export function defaultBackend(): CryptoBackend {
  return getBackend(defaultBackendName());
}
