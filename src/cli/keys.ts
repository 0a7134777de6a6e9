/** `tswg genkey`, `tswg genpsk`, `tswg pubkey`: the same contract as `wg genkey` and friends. */
import { defaultBackend } from "../crypto/index.js";
import { generatePresharedKey, keyToBase64, parseKey } from "../crypto/keys.js";
import { parseArgs, wantsHelp } from "./args.js";

const KEY_USAGE = `Usage: tswg genkey | tswg genpsk | tswg pubkey

  genkey   print a new private key (base64)
  genpsk   print a new preshared key
  pubkey   read a private key on stdin, print its public key
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function runKeyCommand(cmd: "genkey" | "genpsk" | "pubkey", args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(KEY_USAGE);
    return 0;
  }
  parseArgs(args, { command: cmd, flags: {}, usage: KEY_USAGE });
  const backend = defaultBackend();
  switch (cmd) {
    case "genkey":
      process.stdout.write(keyToBase64(backend.generatePrivateKey()) + "\n");
      return 0;
    case "genpsk":
      process.stdout.write(keyToBase64(generatePresharedKey()) + "\n");
      return 0;
    case "pubkey": {
      const text = (await readStdin()).trim();
      let priv: Uint8Array;
      try {
        priv = parseKey(text);
      } catch {
        process.stderr.write("tswg: pubkey: stdin is not a valid base64 32-byte key\n");
        return 1;
      }
      process.stdout.write(keyToBase64(backend.publicKey(priv)) + "\n");
      return 0;
    }
  }
}
