// Moved to src/testbed/privileges.ts; kept so that tests can import it from here.
export * from "../../src/testbed/privileges.js";
