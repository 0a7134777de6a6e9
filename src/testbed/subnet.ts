/**
 * An IPv4 subnet of a test topology that hands out host addresses in order, so that a scenario
 * only names its networks and still gets predictable addresses (.1, .2, ... unless asked otherwise).
 */

export class Subnet {
  /** The network address as a 32-bit number. */
  private readonly base: number;
  private readonly size: number;
  readonly prefixLength: number;
  private readonly used = new Set<number>();
  private next = 1;

  /** `cidr`: an IPv4 network with prefix length 8-30, e.g. "198.51.100.0/24". */
  constructor(readonly cidr: string) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
    if (!m) throw new Error(`subnet "${cidr}" must be an IPv4 network with prefix length, e.g. "10.1.0.0/24"`);
    const prefix = Number(m[2]);
    if (prefix < 8 || prefix > 30) throw new Error(`subnet "${cidr}": prefix length must be 8-30`);
    const addr = parseIpv4(m[1]!);
    this.size = 2 ** (32 - prefix);
    const base = addr - (addr % this.size);
    if (base !== addr) throw new Error(`subnet "${cidr}" has host bits set; the network is ${formatIpv4(base)}/${prefix}`);
    this.base = base;
    this.prefixLength = prefix;
  }

  /** The network address, e.g. "198.51.100.0". */
  get network(): string {
    return formatIpv4(this.base);
  }

  contains(ip: string): boolean {
    const n = parseIpv4(ip);
    return n >= this.base && n < this.base + this.size;
  }

  /**
   * Takes `ip` if given (it must be a free host address of this subnet), else the lowest free
   * host address after those handed out so far. Throws when the subnet is full.
   */
  allocate(ip?: string): string {
    if (ip !== undefined) {
      const n = parseIpv4(ip);
      if (!this.contains(ip)) throw new Error(`address ${ip} is not in subnet ${this.cidr}`);
      const off = n - this.base;
      if (off === 0 || off === this.size - 1) throw new Error(`address ${ip} is the network or broadcast address of ${this.cidr}`);
      if (this.used.has(off)) throw new Error(`address ${ip} is already in use in ${this.cidr}`);
      this.used.add(off);
      return ip;
    }
    while (this.next < this.size - 1 && this.used.has(this.next)) this.next++;
    if (this.next >= this.size - 1) throw new Error(`subnet ${this.cidr} has no free address left`);
    this.used.add(this.next);
    return formatIpv4(this.base + this.next);
  }

  /** `ip` with this subnet's prefix length, as `ip addr add` wants it. */
  withPrefix(ip: string): string {
    return `${ip}/${this.prefixLength}`;
  }
}

/** Dotted quad to a 32-bit number; throws on anything else. */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`"${text}" is not an IPv4 address`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}
