/**
 * Trust anchors for https:// servers: the operating system's CA bundle, as Go programs such as
 * ProxyGuard use it, rather than the copy of Mozilla's list built into Node. SSL_CERT_FILE
 * points elsewhere, as for OpenSSL and Go. Where no bundle is found, Node's list is used.
 */
import { readFileSync } from "node:fs";

/** Where Linux distributions keep the bundle (the list Go's crypto/x509 searches). */
export const SYSTEM_CA_FILES: readonly string[] = [
  "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo, Arch
  "/etc/pki/tls/certs/ca-bundle.crt", // Fedora, RHEL
  "/etc/ssl/ca-bundle.pem", // openSUSE
  "/etc/pki/tls/cacert.pem", // OpenELEC
  "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
  "/etc/ssl/cert.pem", // Alpine
];

let cached: { pem: string | undefined; source: string } | undefined;

/**
 * The system's CA certificates as PEM text, or undefined to use Node's built-in list. Read once
 * per process. Throws if SSL_CERT_FILE names a file that cannot be read.
 */
export function systemCaPem(): string | undefined {
  cached ??= loadSystemCa(process.env.SSL_CERT_FILE);
  return cached.pem;
}

/** Where {@link systemCaPem} came from, for logs. */
export function systemCaSource(): string {
  cached ??= loadSystemCa(process.env.SSL_CERT_FILE);
  return cached.source;
}

export function loadSystemCa(override: string | undefined, files: readonly string[] = SYSTEM_CA_FILES): { pem: string | undefined; source: string } {
  if (override !== undefined && override !== "") {
    try {
      return { pem: readFileSync(override, "utf8"), source: override };
    } catch (err) {
      throw new Error(`SSL_CERT_FILE=${override} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  for (const f of files) {
    try {
      const pem = readFileSync(f, "utf8");
      if (pem.includes("-----BEGIN CERTIFICATE-----")) return { pem, source: f };
    } catch {
      // try the next place
    }
  }
  return { pem: undefined, source: "Node's built-in CA list" };
}
