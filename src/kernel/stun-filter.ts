/**
 * The classic-BPF program for the raw-socket port sharing: pass only STUN to one UDP port.
 *
 * An IPv4 raw socket sees the IP header, whose length varies with options: the program reads the
 * IHL (BPF_MSH) instead of assuming 20 bytes, and drops non-first fragments. An IPv6 raw socket
 * starts at the UDP header. A STUN message has the top two bits of its first byte clear and the
 * magic cookie at UDP payload offset 4 (RFC 8489). TURN ChannelData may pass too (option), for
 * a relay allocated from the shared port.
 */

/** One sock_filter instruction. */
export interface BpfInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const STUN_MAGIC_COOKIE = 0x2112a442;

// Opcodes (linux/bpf_common.h).
const LD_H_ABS = 0x28;
const LD_H_IND = 0x48;
const LD_W_IND = 0x40;
const LD_B_IND = 0x50;
const LD_W_ABS = 0x20;
const LD_B_ABS = 0x30;
const LDX_B_MSH = 0xb1;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;

const JGE_K = 0x35;
const JGT_K = 0x25;

/** A jump target: the next instruction (0), or a label resolved when the program is assembled. */
type Target = 0 | "accept" | "drop" | "channel";
interface Op {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
  label?: "accept" | "drop" | "channel";
}
const op = (code: number, k: number, jt: Target = 0, jf: Target = 0, label?: Op["label"]): Op => ({ code, k, jt, jf, label });

function assemble(ops: Op[]): BpfInstruction[] {
  const at = new Map<string, number>();
  ops.forEach((o, i) => o.label !== undefined && at.set(o.label, i));
  const offset = (i: number, t: Target): number => (t === 0 ? 0 : at.get(t)! - i - 1);
  return ops.map((o, i) => ({ code: o.code, k: o.k, jt: offset(i, o.jt), jf: offset(i, o.jf) }));
}

export interface StunFilterOptions {
  /**
   * Also pass TURN ChannelData (first byte 0x40-0x4F, RFC 8656): what a TURN server relays to an
   * allocation made from the shared port. WireGuard messages start with 1-4, so they still stay out.
   */
  channelData?: boolean;
}

/** The filter for `family` and the WireGuard listen `port`. */
export function stunFilter(family: 4 | 6, port: number, opts: StunFilterOptions = {}): BpfInstruction[] {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port ${port} is not 1-65535`);
  const channel = opts.channelData === true;
  // IPv6: loads are absolute from the UDP header; IPv4: relative to X = the IP header's length.
  const [ldH, ldB, ldW] = family === 6 ? [LD_H_ABS, LD_B_ABS, LD_W_ABS] : [LD_H_IND, LD_B_IND, LD_W_IND];
  const ops: Op[] = [];
  if (family === 4) {
    ops.push(op(LD_H_ABS, 6)); // flags + fragment offset
    ops.push(op(JSET_K, 0x1fff, "drop", 0)); // a non-first fragment has no UDP header
    ops.push(op(LDX_B_MSH, 0)); // X = 4 * IHL
  }
  ops.push(
    op(ldH, 2), // UDP destination port
    op(JEQ_K, port, 0, "drop"),
    op(ldB, 8), // first payload byte
    op(JSET_K, 0xc0, channel ? "channel" : "drop", 0),
    op(ldW, 12), // payload bytes 4..7
    op(JEQ_K, STUN_MAGIC_COOKIE, "accept", "drop"),
  );
  if (channel) ops.push(op(JGE_K, 0x40, 0, "drop", "channel"), op(JGT_K, 0x4f, "drop", "accept"));
  ops.push(op(RET_K, 0xffff, 0, 0, "accept"), op(RET_K, 0, 0, 0, "drop"));
  return assemble(ops);
}

/** The program as the kernel's struct sock_filter array (host byte order: little-endian x86/arm). */
export function encodeFilter(program: readonly BpfInstruction[]): Buffer {
  const b = Buffer.alloc(program.length * 8);
  program.forEach((p, i) => {
    b.writeUInt16LE(p.code, i * 8);
    b.writeUInt8(p.jt, i * 8 + 2);
    b.writeUInt8(p.jf, i * 8 + 3);
    b.writeUInt32LE(p.k >>> 0, i * 8 + 4);
  });
  return b;
}
