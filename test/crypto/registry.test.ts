import { afterEach, describe, expect, it, vi } from "vitest";
import {
  CRYPTO_BACKEND_ENV,
  NodeBackend,
  backendNames,
  backends,
  defaultBackend,
  getBackend,
  registerBackend,
  type CryptoBackend,
} from "../../src/crypto/index.js";

afterEach(() => {
  vi.unstubAllEnvs();
  delete backends["test-double"];
});

describe("backend registry", () => {
  it("defaults to node and honours TSWG_CRYPTO", () => {
    vi.stubEnv(CRYPTO_BACKEND_ENV, "");
    expect(defaultBackend().name).toBe("node");
    expect(getBackend().name).toBe("node");
    vi.stubEnv(CRYPTO_BACKEND_ENV, "stablelib");
    expect(defaultBackend().name).toBe("stablelib");
    expect(getBackend().name).toBe("stablelib");
  });

  it("names an unknown backend and the known ones in its error", () => {
    vi.stubEnv(CRYPTO_BACKEND_ENV, "nope");
    expect(() => defaultBackend()).toThrow(/unknown crypto backend "nope".*node.*stablelib/);
    expect(() => getBackend("toString")).toThrow(/unknown crypto backend/);
  });

  it("shares one instance per name and lets new backends register", () => {
    expect(getBackend("node")).toBe(getBackend("node"));
    let made = 0;
    const factory = (): CryptoBackend => {
      made++;
      return Object.assign(new NodeBackend(), { name: "test-double" });
    };
    registerBackend("test-double", factory);
    expect(backendNames()).toContain("test-double");
    expect(getBackend("test-double").name).toBe("test-double");
    getBackend("test-double");
    expect(made).toBe(1);
    registerBackend("test-double", factory);
    getBackend("test-double");
    expect(made).toBe(2);
  });
});
