// Moved to src/testbed/names.ts; kept so that tests can import it from here.
export * from "../../src/testbed/names.js";
