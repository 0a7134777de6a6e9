import { describe, expect, it } from "vitest";
import { parseArgs, UsageError } from "../../src/cli/args.js";

describe("the CLI's one flag parser", () => {
  const spec = { command: "x", flags: { name: "value", on: "bool" } as const, aliases: { n: "name" }, positionals: ["target"], usage: "U" };
  it("takes --flag value, --flag=value, aliases and positionals", () => {
    const p = parseArgs(["--name", "a", "t", "--on"], spec);
    expect(Object.fromEntries(p.flags)).toEqual({ name: "a", on: "true" });
    expect(p.positionals).toEqual(["t"]);
    expect(parseArgs(["-n", "b", "t"], spec).flags.get("name")).toBe("b");
    expect(parseArgs(["--name=c=d", "t"], spec).flags.get("name")).toBe("c=d");
  });
  it.each([
    [["t", "--bogus"], /x: unknown option --bogus/],
    [["t", "--name"], /--name needs a value/],
    [["t", "--name", "a", "--name", "b"], /given twice/],
    [["t", "u"], /unexpected argument "u"/],
    [[], /missing target/],
    [["t", "-name", "a"], /unknown option -name/],
    [["t", "--on=maybe"], /takes no value/],
  ])("refuses %j with a usage error carrying the command's help", (args, why) => {
    let err: unknown;
    try {
      parseArgs(args, spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(why);
    expect((err as UsageError).usage).toBe("U");
  });
});
