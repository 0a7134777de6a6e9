/** The one loader of PEM files (TLS certificates, keys, CA bundles) named in flags and configuration. */
import { readFileSync } from "node:fs";

/**
 * The text of `file`, which must hold at least one PEM block (of `label`, e.g. "CERTIFICATE",
 * when given). Errors start with `what` (e.g. "--tls-cert /etc/x.pem") and say what is wrong.
 */
export function readPemFile(file: string, what: string, label?: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`${what}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const marker = label === undefined ? "-----BEGIN " : `-----BEGIN ${label}-----`;
  if (!text.includes(marker)) throw new Error(`${what}: ${label === undefined ? "not a PEM file" : `no PEM ${label.toLowerCase()} in it`}`);
  return text;
}
