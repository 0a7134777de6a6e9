#!/usr/bin/env node
// Thin launcher: the command line lives in the compiled library.
import { main } from "../dist/cli/main.js";

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`tswg: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
