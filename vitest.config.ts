import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests that build network namespaces share the host's netns list and /run/wireguard;
    // they isolate themselves by name prefix, so files may run in parallel.
    pool: "forks",
  },
});
