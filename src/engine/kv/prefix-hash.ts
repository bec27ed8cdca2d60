// Prefix hashing for the KV prefix cache: a hash chain over FULL blocks only, where block i's hash
// is hash(hash of block i-1, tokens of block i). Hashes are 52-bit numbers (two mixed 32-bit lanes)
// so they key a Map directly; a hit is only trusted after comparing tokens and the parent hash.
// Never hashes a partial block (its contents still change).

/** Parent hash of the first block of a sequence. */
export const ROOT_HASH = 0;

const LANE_A_SEED = 0x9e3779b1;
const LANE_B_SEED = 0x85ebca77;

function mix(h: number, x: number): number {
  // murmur3-style round over one 32-bit word.
  let k = Math.imul(x | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, len: number): number {
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash of one full block given its parent's hash. tokens is the block's slice [start, end) of
 * tokenIds. Result: an integer in [1, 2^52) (0 is reserved for ROOT_HASH).
 */
export function hashBlock(parentHash: number, tokenIds: ArrayLike<number>, start = 0, end = tokenIds.length): number {
  const pLo = parentHash % 0x100000000;
  const pHi = Math.floor(parentHash / 0x100000000);
  let a = mix(mix(LANE_A_SEED, pLo), pHi);
  let b = mix(mix(LANE_B_SEED, pHi), pLo);
  for (let i = start; i < end; i++) {
    const t = tokenIds[i]!;
    a = mix(a, t);
    b = mix(b, t ^ 0x5bd1e995);
  }
  const lo = finish(a, end - start);
  const hi = finish(b, end - start) & 0xfffff; // 20 bits
  const h = hi * 0x100000000 + lo;
  return h === ROOT_HASH ? 1 : h;
}

/**
 * Extend a sequence's block-hash chain: hashes.length full blocks are already hashed; append the
 * hashes of any further full blocks within the first numTokens tokens. Returns hashes.
 */
export function extendBlockHashes(hashes: number[], tokenIds: ArrayLike<number>, numTokens: number, blockSize: number): number[] {
  const numFull = Math.floor(Math.min(numTokens, tokenIds.length) / blockSize);
  for (let i = hashes.length; i < numFull; i++) {
    const parent = i === 0 ? ROOT_HASH : hashes[i - 1]!;
    hashes.push(hashBlock(parent, tokenIds, i * blockSize, (i + 1) * blockSize));
  }
  return hashes;
}
