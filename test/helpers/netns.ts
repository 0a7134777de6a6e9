// Moved to src/testbed/netns.ts; kept so that tests can import it from here.
export * from "../../src/testbed/netns.js";
