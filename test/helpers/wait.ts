// Moved to src/testbed/wait.ts; kept so that tests can import it from here.
export * from "../../src/testbed/wait.js";
