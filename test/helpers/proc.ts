// Moved to src/testbed/proc.ts; kept so that tests can import it from here.
export * from "../../src/testbed/proc.js";
