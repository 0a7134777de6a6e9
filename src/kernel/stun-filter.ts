/**
 * The classic-BPF program for the raw-socket port sharing: pass only STUN to one UDP port.
 *
 * An IPv4 raw socket sees the IP header, whose length varies with options: the program reads the
 * IHL (BPF_MSH) instead of assuming 20 bytes, and drops non-first fragments. An IPv6 raw socket
 * starts at the UDP header. A STUN message has the top two bits of its first byte clear and the
 * magic cookie at UDP payload offset 4 (RFC 8489).
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

const ins = (code: number, k: number, jt = 0, jf = 0): BpfInstruction => ({ code, jt, jf, k });

/** The filter for `family` and the WireGuard listen `port`. */
export function stunFilter(family: 4 | 6, port: number): BpfInstruction[] {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`port ${port} is not 1-65535`);
  if (family === 6) {
    return [
      ins(LD_H_ABS, 2), // UDP destination port
      ins(JEQ_K, port, 0, 5),
      ins(LD_B_ABS, 8), // first payload byte
      ins(JSET_K, 0xc0, 3, 0),
      ins(LD_W_ABS, 12), // payload bytes 4..7
      ins(JEQ_K, STUN_MAGIC_COOKIE, 0, 1),
      ins(RET_K, 0xffff),
      ins(RET_K, 0),
    ];
  }
  return [
    ins(LD_H_ABS, 6), // flags + fragment offset
    ins(JSET_K, 0x1fff, 8, 0), // a non-first fragment has no UDP header
    ins(LDX_B_MSH, 0), // X = 4 * IHL
    ins(LD_H_IND, 2), // UDP destination port
    ins(JEQ_K, port, 0, 5),
    ins(LD_B_IND, 8), // first payload byte
    ins(JSET_K, 0xc0, 3, 0),
    ins(LD_W_IND, 12), // payload bytes 4..7
    ins(JEQ_K, STUN_MAGIC_COOKIE, 0, 1),
    ins(RET_K, 0xffff),
    ins(RET_K, 0),
  ];
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
