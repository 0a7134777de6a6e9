// Wycheproof X25519 against every registered backend.
import { describe, expect, it } from "vitest";
import { ZeroSharedSecretError, backendNames, getBackend } from "../../src/crypto/index.js";
import { hex, loadVectors, toHex, type WycheproofFile, type XdhGroup } from "./vectors.js";

const file = loadVectors<WycheproofFile<XdhGroup>>("wycheproof-x25519_test.json");
const cases = file.testGroups.flatMap((g) => g.tests);
const ZERO = "00".repeat(32);

describe.each(backendNames())("backend %s: Wycheproof X25519", (name) => {
  const backend = getBackend(name);

  it("loads every case the file declares", () => {
    expect(file.testGroups.every((g) => g.curve === "curve25519")).toBe(true);
    expect(cases.length).toBe(file.numberOfTests);
    expect(cases.length).toBeGreaterThan(500);
  });

  it("computes every case's shared secret, refusing all-zero results", () => {
    const seen = { valid: 0, acceptable: 0, zero: 0 };
    for (const t of cases) {
      const label = `tcId ${t.tcId} ${t.result} (${t.flags.join(",")})`;
      expect(t.result, label).not.toBe("invalid");
      const compute = () => backend.dh(hex(t.private), hex(t.public));
      if (t.shared === ZERO) {
        // Low-order public keys: WireGuard must refuse these, whatever the case's rating.
        expect(compute, label).toThrow(ZeroSharedSecretError);
        seen.zero++;
      } else {
        // "acceptable" cases (twist points, non-canonical encodings, ...) are accepted here, and
        // then the result must be exactly the expected one, as for "valid" cases.
        expect(toHex(compute()), label).toBe(t.shared);
      }
      seen[t.result === "valid" ? "valid" : "acceptable"]++;
    }
    expect(seen.valid + seen.acceptable).toBe(file.numberOfTests);
    expect(seen.zero).toBeGreaterThan(0);
  });

  it("derives public keys that agree through DH", () => {
    const a = backend.generatePrivateKey();
    const b = backend.generatePrivateKey();
    expect(a.length).toBe(32);
    expect(a[0]! & 7).toBe(0);
    expect(a[31]! & 0xc0).toBe(0x40);
    const ab = backend.dh(a, backend.publicKey(b));
    const ba = backend.dh(b, backend.publicKey(a));
    expect(toHex(ab)).toBe(toHex(ba));
    expect(toHex(ab)).not.toBe(ZERO);
  });

  it("matches RFC 7748 section 6.1", () => {
    const alice = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const bob = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    expect(toHex(backend.publicKey(alice))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(toHex(backend.publicKey(bob))).toBe("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    expect(toHex(backend.dh(alice, backend.publicKey(bob)))).toBe(
      "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    );
  });
});
