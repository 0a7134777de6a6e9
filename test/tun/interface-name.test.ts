import { describe, expect, it } from "vitest";
import { checkInterfaceName, interfaceNameProblem } from "../../src/tun/interface-name.js";

describe("interface names", () => {
  it("accepts ordinary names and 15-byte names", () => {
    for (const name of ["wg0", "tswg-a_b.c", "a".repeat(15)]) expect(interfaceNameProblem(name)).toBeNull();
  });

  it("refuses names longer than 15 bytes, counting UTF-8 bytes", () => {
    expect(() => checkInterfaceName("a".repeat(16))).toThrow(
      'invalid interface name "aaaaaaaaaaaaaaaa": it is 16 bytes long, at most 15 are allowed',
    );
    expect(interfaceNameProblem("é".repeat(8))).toMatch(/16 bytes/);
  });

  it("refuses empty names, path components, separators and white space", () => {
    for (const name of ["", ".", "..", "a/b", "a:1", "a b", "a\tb", "a\0b"]) {
      expect(interfaceNameProblem(name), name).not.toBeNull();
    }
  });

  it("allows one %d only where templates are allowed", () => {
    expect(interfaceNameProblem("tswg%d")).toMatch(/'%'/);
    expect(interfaceNameProblem("tswg%d", true)).toBeNull();
    expect(interfaceNameProblem("tswg%d%d", true)).toMatch(/only one/);
    expect(interfaceNameProblem("tswg%s", true)).toMatch(/only one/);
  });
});
