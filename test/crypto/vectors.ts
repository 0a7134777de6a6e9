// Loaders for the JSON test vectors in vectors/ (see vectors/README.md).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const VECTOR_DIR = fileURLToPath(new URL("../../vectors/", import.meta.url));

export function loadVectors<T>(file: string): T {
  return JSON.parse(readFileSync(VECTOR_DIR + file, "utf8")) as T;
}

export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "hex"));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}

export type WycheproofResult = "valid" | "invalid" | "acceptable";

export interface AeadGroup {
  ivSize: number;
  keySize: number;
  tagSize: number;
  tests: AeadCase[];
}

export interface AeadCase {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: WycheproofResult;
}

export interface XdhGroup {
  curve: string;
  tests: XdhCase[];
}

export interface XdhCase {
  tcId: number;
  comment: string;
  flags: string[];
  public: string;
  private: string;
  shared: string;
  result: WycheproofResult;
}

export interface Blake2Kat {
  hash: string;
  in: string;
  key: string;
  out: string;
}
