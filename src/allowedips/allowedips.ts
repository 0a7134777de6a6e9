/**
 * Cryptokey routing: which value (peer) owns the longest prefix containing an address.
 *
 * One path-compressed binary trie per family. Keys are held as four 32-bit words with
 * precomputed masks. A lookup reads the address straight from a packet buffer at an offset,
 * walks down by single bit tests, then checks only the nodes that hold a value, deepest first;
 * it allocates nothing. Nodes without a value exist only where two branches split, so the
 * depth is bounded by the number of prefixes as well as by the address length.
 */
import { parseIp } from "./ip.js";
import { formatCidr, toPrefix, type Prefix, type PrefixInput } from "./prefix.js";

class TrieNode<T> {
  // Key words (already masked) and masks; words past the family's length stay 0.
  k0 = 0;
  k1 = 0;
  k2 = 0;
  k3 = 0;
  m0 = 0;
  m1 = 0;
  m2 = 0;
  m3 = 0;
  /** Which key word, and which shift in it, selects the child below this node. */
  childWord = 0;
  childShift = 0;
  child0: TrieNode<T> | null = null;
  child1: TrieNode<T> | null = null;
  parent: TrieNode<T> | null = null;
  value: T | undefined = undefined;
  hasValue = false;

  constructor(
    words: Int32Array,
    readonly cidr: number,
    readonly v6: boolean,
  ) {
    const m = [0, 0, 0, 0];
    for (let i = 0; i < 4; i++) {
      const inWord = Math.min(32, Math.max(0, cidr - 32 * i));
      m[i] = inWord === 0 ? 0 : -1 << (32 - inWord);
    }
    this.m0 = m[0]!;
    this.m1 = m[1]!;
    this.m2 = m[2]!;
    this.m3 = m[3]!;
    this.k0 = words[0]! & this.m0;
    this.k1 = words[1]! & this.m1;
    this.k2 = words[2]! & this.m2;
    this.k3 = words[3]! & this.m3;
    this.childWord = cidr >>> 5;
    this.childShift = 31 - (cidr & 31);
  }

  word(i: number): number {
    return i === 0 ? this.k0 : i === 1 ? this.k1 : i === 2 ? this.k2 : this.k3;
  }

  prefix(): Prefix {
    const n = this.v6 ? 16 : 4;
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = (this.word(i >>> 2) >>> (24 - 8 * (i & 3))) & 0xff;
    return { family: this.v6 ? 6 : 4, bytes, bits: this.cidr };
  }
}

function bitOf(words: Int32Array, pos: number): number {
  return (words[pos >>> 5]! >>> (31 - (pos & 31))) & 1;
}

/** Length of the common leading bits of a node's key and `words`, at most `limit`. */
function commonBits<T>(node: TrieNode<T>, words: Int32Array, limit: number): number {
  for (let i = 0; i < 4; i++) {
    const x = node.word(i) ^ words[i]!;
    if (x !== 0) return Math.min(limit, 32 * i + Math.clz32(x));
  }
  return limit;
}

export class AllowedIps<T> {
  private root4: TrieNode<T> | null = null;
  private root6: TrieNode<T> | null = null;
  private readonly byValue = new Map<T, Set<TrieNode<T>>>();
  private count = 0;
  private readonly scratch = new Int32Array(4);
  /** Candidates of the lookup in progress; at most one per prefix length, so 129 suffice. */
  private readonly path: Array<TrieNode<T> | null> = new Array<TrieNode<T> | null>(129).fill(null);

  /** Number of prefixes in the table. */
  get size(): number {
    return this.count;
  }

  /**
   * Routes `prefix` (host bits ignored) to `value`. A prefix belongs to one value only:
   * inserting it for another value moves it, as WireGuard does.
   */
  insert(prefix: PrefixInput, value: T): void {
    const p = toPrefix(prefix);
    const words = this.loadWords(p.bytes);
    const v6 = p.family === 6;
    const root = v6 ? this.root6 : this.root4;
    if (root === null) {
      this.setRoot(v6, this.attachValue(new TrieNode<T>(words, p.bits, v6), value));
      return;
    }
    let node: TrieNode<T> = root;
    for (;;) {
      const common = commonBits(node, words, Math.min(node.cidr, p.bits));
      if (common === node.cidr && common === p.bits) {
        this.attachValue(node, value);
        return;
      }
      if (common === node.cidr) {
        // The node's prefix contains the new one: go down the side the new prefix's next bit picks.
        const side = bitOf(words, node.cidr);
        const next: TrieNode<T> | null = side === 0 ? node.child0 : node.child1;
        if (next === null) {
          const leaf = this.attachValue(new TrieNode<T>(words, p.bits, v6), value);
          this.setChild(node, side, leaf);
          return;
        }
        node = next;
        continue;
      }
      const parent = node.parent;
      if (common === p.bits) {
        // The new prefix contains the node's: it goes above the node.
        const above = this.attachValue(new TrieNode<T>(words, p.bits, v6), value);
        this.replace(parent, node, above, v6);
        this.setChild(above, bitOfNode(node, p.bits), node);
        return;
      }
      // They diverge below both lengths: a valueless fork holds the two.
      const fork = new TrieNode<T>(words, common, v6);
      const leaf = this.attachValue(new TrieNode<T>(words, p.bits, v6), value);
      this.replace(parent, node, fork, v6);
      this.setChild(fork, bitOf(words, common), leaf);
      this.setChild(fork, bitOfNode(node, common), node);
      return;
    }
  }

  /** Removes exactly this prefix (host bits ignored). Returns whether it was present. */
  remove(prefix: PrefixInput): boolean {
    const p = toPrefix(prefix);
    const words = this.loadWords(p.bytes);
    let node = p.family === 6 ? this.root6 : this.root4;
    while (node !== null) {
      const common = commonBits(node, words, Math.min(node.cidr, p.bits));
      if (common < node.cidr) return false;
      if (node.cidr === p.bits) {
        if (!node.hasValue) return false;
        this.removeNode(node);
        return true;
      }
      node = bitOf(words, node.cidr) === 0 ? node.child0 : node.child1;
    }
    return false;
  }

  /** Removes every prefix routed to `value`; returns how many. */
  removeByValue(value: T): number {
    const nodes = this.byValue.get(value);
    if (nodes === undefined) return 0;
    const list = [...nodes];
    for (const n of list) this.removeNode(n);
    return list.length;
  }

  /** The prefixes routed to `value` as normalised CIDR text, IPv4 first, in address order. */
  entriesFor(value: T): string[] {
    const nodes = this.byValue.get(value);
    if (nodes === undefined) return [];
    const prefixes = [...nodes].map((n) => n.prefix());
    prefixes.sort(comparePrefixes);
    return prefixes.map(formatCidr);
  }

  /** Longest-prefix match of the IPv4 address at `buf[off..off+4)`. */
  lookupV4(buf: Uint8Array, off = 0): T | undefined {
    if (!(off >= 0 && off + 4 <= buf.length)) throw new RangeError(`lookupV4: offset ${off} + 4 is outside a buffer of ${buf.length} bytes`);
    const a0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
    // Descend by the address's bits alone, remembering nodes that hold a value; then the
    // deepest of those whose prefix matches is the answer. Only the candidates are compared.
    const path = this.path;
    let depth = 0;
    let node = this.root4;
    while (node !== null) {
      if (node.hasValue) path[depth++] = node;
      if (node.cidr === 32) break;
      node = ((a0 >>> node.childShift) & 1) === 0 ? node.child0 : node.child1;
    }
    while (depth > 0) {
      const n = path[--depth]!;
      if (((a0 ^ n.k0) & n.m0) === 0) return n.value;
    }
    return undefined;
  }

  /** Longest-prefix match of the IPv6 address at `buf[off..off+16)`. */
  lookupV6(buf: Uint8Array, off = 0): T | undefined {
    if (!(off >= 0 && off + 16 <= buf.length)) throw new RangeError(`lookupV6: offset ${off} + 16 is outside a buffer of ${buf.length} bytes`);
    const a0 = (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
    const a1 = (buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!;
    const a2 = (buf[off + 8]! << 24) | (buf[off + 9]! << 16) | (buf[off + 10]! << 8) | buf[off + 11]!;
    const a3 = (buf[off + 12]! << 24) | (buf[off + 13]! << 16) | (buf[off + 14]! << 8) | buf[off + 15]!;
    const path = this.path;
    let depth = 0;
    let node = this.root6;
    while (node !== null) {
      if (node.hasValue) path[depth++] = node;
      if (node.cidr === 128) break;
      const w = node.childWord;
      const word = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      node = ((word >>> node.childShift) & 1) === 0 ? node.child0 : node.child1;
    }
    while (depth > 0) {
      const n = path[--depth]!;
      if (((a0 ^ n.k0) & n.m0) === 0 && ((a1 ^ n.k1) & n.m1) === 0 && ((a2 ^ n.k2) & n.m2) === 0 && ((a3 ^ n.k3) & n.m3) === 0) {
        return n.value;
      }
    }
    return undefined;
  }

  /** Longest-prefix match of an address given as text (IPv4-mapped IPv6 is looked up as IPv6). */
  lookup(ip: string): T | undefined {
    const addr = parseIp(ip);
    return addr.family === 4 ? this.lookupV4(addr.bytes) : this.lookupV6(addr.bytes);
  }

  /** Every prefix and its value, IPv4 first, in address order. */
  entries(): Array<[string, T]> {
    const out: Array<[Prefix, T]> = [];
    for (const [value, nodes] of this.byValue) for (const n of nodes) out.push([n.prefix(), value]);
    out.sort((a, b) => comparePrefixes(a[0], b[0]));
    return out.map(([p, v]) => [formatCidr(p), v]);
  }

  clear(): void {
    this.path.fill(null);
    this.root4 = null;
    this.root6 = null;
    this.byValue.clear();
    this.count = 0;
  }

  private loadWords(bytes: Uint8Array): Int32Array {
    const w = this.scratch;
    w.fill(0);
    for (let i = 0; i < bytes.length; i++) w[i >>> 2]! |= bytes[i]! << (24 - 8 * (i & 3));
    return w;
  }

  private attachValue(node: TrieNode<T>, value: T): TrieNode<T> {
    if (node.hasValue) {
      if (node.value === value) return node;
      this.byValue.get(node.value as T)?.delete(node);
      if (this.byValue.get(node.value as T)?.size === 0) this.byValue.delete(node.value as T);
    } else {
      this.count++;
    }
    node.value = value;
    node.hasValue = true;
    let set = this.byValue.get(value);
    if (set === undefined) {
      set = new Set();
      this.byValue.set(value, set);
    }
    set.add(node);
    return node;
  }

  private removeNode(node: TrieNode<T>): void {
    const set = this.byValue.get(node.value as T);
    set?.delete(node);
    if (set?.size === 0) this.byValue.delete(node.value as T);
    node.value = undefined;
    node.hasValue = false;
    this.count--;
    if (node.child0 !== null && node.child1 !== null) return; // stays as a fork
    const only = node.child0 ?? node.child1;
    const parent = node.parent;
    this.replace(parent, node, only, node.v6);
    // A valueless fork that just lost a branch is no longer needed.
    if (only === null && parent !== null && !parent.hasValue) {
      this.replace(parent.parent, parent, parent.child0 ?? parent.child1, parent.v6);
    }
  }

  private setRoot(v6: boolean, node: TrieNode<T> | null): void {
    if (node !== null) node.parent = null;
    if (v6) this.root6 = node;
    else this.root4 = node;
  }

  private setChild(parent: TrieNode<T>, side: number, child: TrieNode<T> | null): void {
    if (side === 0) parent.child0 = child;
    else parent.child1 = child;
    if (child !== null) child.parent = parent;
  }

  /** Puts `next` where `old` hangs below `parent` (or at the root). */
  private replace(parent: TrieNode<T> | null, old: TrieNode<T>, next: TrieNode<T> | null, v6: boolean): void {
    if (parent === null) this.setRoot(v6, next);
    else this.setChild(parent, parent.child0 === old ? 0 : 1, next);
  }
}

function bitOfNode<T>(node: TrieNode<T>, pos: number): number {
  return (node.word(pos >>> 5) >>> (31 - (pos & 31))) & 1;
}

function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.bytes.length !== b.bytes.length) return a.bytes.length - b.bytes.length;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return a.bytes[i]! - b.bytes[i]!;
  return a.bits - b.bits;
}

