#!/usr/bin/env node
// Thin launcher: the command line lives in the compiled library.
import { main } from "../dist/cli/main.js";
import { exitWhenFlushed, guardStdio, writeTo } from "../dist/log/stdio.js";

// Output is never the reason to stop, and all of it is written before exiting.
guardStdio();
main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (err) => {
    writeTo(process.stderr, `tswg: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitWhenFlushed(1);
  },
);
