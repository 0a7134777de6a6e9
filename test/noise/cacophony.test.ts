import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { backendNames, counterNonce, getBackend } from "../../src/crypto/index.js";
import {
  deriveTransportKeys,
  readInitiation,
  readResponse,
  writeInitiation,
  writeResponse,
} from "../../src/noise/handshake.js";

// The Cacophony vector for Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (vectors/ holds its source note).
interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_psks: string[];
  init_static: string;
  init_ephemeral: string;
  init_remote_static: string;
  resp_prologue: string;
  resp_psks: string[];
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash: string;
  messages: { payload: string; ciphertext: string }[];
}

const file = new URL("../../vectors/noise-ikpsk2-25519-chachapoly-blake2s.json", import.meta.url);
const vector = (JSON.parse(readFileSync(file, "utf8")) as { vectors: Vector[] }).vectors[0]!;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

describe.each(backendNames())("Cacophony Noise_IKpsk2 vector (%s backend)", (name) => {
  const backend = getBackend(name);

  it("reproduces all six messages and the handshake hash byte for byte", () => {
    expect(vector.protocol_name).toBe("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
    const initStatic = hex(vector.init_static);
    const respStatic = hex(vector.resp_static);
    const initStaticPub = backend.publicKey(initStatic);
    const respStaticPub = backend.publicKey(respStatic);
    expect(toHex(respStaticPub)).toBe(vector.init_remote_static);
    const psk = hex(vector.init_psks[0]!);
    expect(vector.resp_psks[0]).toBe(vector.init_psks[0]);
    const msgs = vector.messages;

    // Message 1: initiator → responder.
    const w1 = writeInitiation(backend, {
      prologue: hex(vector.init_prologue),
      localStaticPublic: initStaticPub,
      remoteStatic: respStaticPub,
      staticStatic: backend.dh(initStatic, respStaticPub),
      ephemeralPrivate: hex(vector.init_ephemeral),
      payload: hex(msgs[0]!.payload),
    });
    const m1 = cat(w1.parts.ephemeral, w1.parts.encryptedStatic, w1.parts.encryptedPayload);
    expect(toHex(m1)).toBe(msgs[0]!.ciphertext);

    const r1 = readInitiation(backend, {
      prologue: hex(vector.resp_prologue),
      localStaticPrivate: respStatic,
      localStaticPublic: respStaticPub,
      parts: { ephemeral: m1.subarray(0, 32), encryptedStatic: m1.subarray(32, 80), encryptedPayload: m1.subarray(80) },
      staticStatic: (rs) => backend.dh(respStatic, rs),
    });
    expect(r1).not.toBeNull();
    expect(toHex(r1!.remoteStatic)).toBe(toHex(initStaticPub));
    expect(toHex(r1!.payload)).toBe(msgs[0]!.payload);

    // Message 2: responder → initiator.
    const p2 = writeResponse(backend, {
      state: r1!.state,
      remoteEphemeral: r1!.remoteEphemeral,
      remoteStatic: r1!.remoteStatic,
      ephemeralPrivate: hex(vector.resp_ephemeral),
      presharedKey: psk,
      payload: hex(msgs[1]!.payload),
    });
    const m2 = cat(p2.ephemeral, p2.encryptedPayload);
    expect(toHex(m2)).toBe(msgs[1]!.ciphertext);
    expect(toHex(r1!.state.h)).toBe(vector.handshake_hash);

    const r2 = readResponse(backend, {
      state: w1.state,
      localEphemeralPrivate: hex(vector.init_ephemeral),
      localStaticPrivate: initStatic,
      presharedKey: psk,
      parts: { ephemeral: m2.subarray(0, 32), encryptedPayload: m2.subarray(32) },
    });
    expect(r2).not.toBeNull();
    expect(toHex(r2!.payload)).toBe(msgs[1]!.payload);
    expect(toHex(r2!.state.h)).toBe(vector.handshake_hash);

    // Messages 3-6: transport, alternating directions, counter nonces, empty AD.
    const [iSend, iRecv] = deriveTransportKeys(r2!.state);
    const [rRecv, rSend] = deriveTransportKeys(r1!.state);
    expect(toHex(iSend)).toBe(toHex(rRecv));
    expect(toHex(iRecv)).toBe(toHex(rSend));
    const counters = [0, 0];
    for (let i = 2; i < 6; i++) {
      const fromInitiator = i % 2 === 0;
      const dir = fromInitiator ? 0 : 1;
      const nonce = counterNonce(counters[dir]!++);
      const sealed = backend.aeadSeal(fromInitiator ? iSend : rSend, nonce, hex(msgs[i]!.payload));
      expect(toHex(sealed)).toBe(msgs[i]!.ciphertext);
      const opened = backend.aeadOpen(fromInitiator ? rRecv : iRecv, nonce, sealed);
      expect(opened && toHex(opened)).toBe(msgs[i]!.payload);
    }
  });

  it("rejects a message 1 with one flipped bit and a response under the wrong PSK", () => {
    const initStatic = hex(vector.init_static);
    const respStatic = hex(vector.resp_static);
    const respStaticPub = backend.publicKey(respStatic);
    const w1 = writeInitiation(backend, {
      prologue: hex(vector.init_prologue),
      localStaticPublic: backend.publicKey(initStatic),
      remoteStatic: respStaticPub,
      staticStatic: backend.dh(initStatic, respStaticPub),
      ephemeralPrivate: hex(vector.init_ephemeral),
      payload: hex(vector.messages[0]!.payload),
    });
    const read = (parts: typeof w1.parts) =>
      readInitiation(backend, {
        prologue: hex(vector.resp_prologue),
        localStaticPrivate: respStatic,
        localStaticPublic: respStaticPub,
        parts,
        staticStatic: (rs) => backend.dh(respStatic, rs),
      });
    const tampered = w1.parts.encryptedPayload.slice();
    tampered[3]! ^= 1;
    expect(read({ ...w1.parts, encryptedPayload: tampered })).toBeNull();
    // Unknown initiator: the callback refuses it.
    expect(
      readInitiation(backend, {
        prologue: hex(vector.resp_prologue),
        localStaticPrivate: respStatic,
        localStaticPublic: respStaticPub,
        parts: w1.parts,
        staticStatic: () => null,
      }),
    ).toBeNull();
    const r1 = read(w1.parts)!;
    const p2 = writeResponse(backend, {
      state: r1.state,
      remoteEphemeral: r1.remoteEphemeral,
      remoteStatic: r1.remoteStatic,
      ephemeralPrivate: hex(vector.resp_ephemeral),
      presharedKey: hex(vector.resp_psks[0]!),
      payload: new Uint8Array(0),
    });
    expect(
      readResponse(backend, {
        state: w1.state,
        localEphemeralPrivate: hex(vector.init_ephemeral),
        localStaticPrivate: initStatic,
        presharedKey: new Uint8Array(32),
        parts: p2,
      }),
    ).toBeNull();
  });
});
