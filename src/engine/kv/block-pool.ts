// BlockPool: the fixed set of KV pages (blocks of blockSize slots). Owns ref counts, the free queue
// in eviction order (head = evicted first; a doubly linked list so a cached free block can be taken
// back out of the middle on a prefix hit) and the hash -> block map of the prefix cache.
// It never decides who gets blocks (KvCacheManager does) and never touches a device. Cache changes
// (a hash registered, a cached block evicted, a reset) go to an optional KvEventListener.
import { invariant } from '../../util/invariant.js';
import type { KvEventListener } from './kv-events.js';
import { ROOT_HASH } from './prefix-hash.js';

const NONE = -1;

export interface BlockPoolStats {
  readonly numTotalBlocks: number;
  readonly numFreeBlocks: number;
  readonly numCachedBlocks: number;
  readonly numEvictions: number;
}

export class BlockPool {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly enableCaching: boolean;
  private readonly refCounts: Int32Array;
  /** Doubly linked free list over block ids. */
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly inFree: Uint8Array;
  private head = NONE;
  private tail = NONE;
  private numFree = 0;
  /** Prefix-cache metadata per block: hash (0 = not cached), parent hash, its tokens. */
  private readonly hashes: Float64Array;
  private readonly parentHashes: Float64Array;
  private readonly blockTokens: (Int32Array | null)[];
  private readonly cache = new Map<number, number>();
  private evictions = 0;
  private readonly events: KvEventListener | null;

  constructor(numBlocks: number, blockSize = 16, enableCaching = true, events: KvEventListener | null = null) {
    this.events = events;
    invariant(Number.isInteger(numBlocks) && numBlocks > 0, `numBlocks must be a positive integer, got ${numBlocks}`);
    invariant(Number.isInteger(blockSize) && blockSize > 0, `blockSize must be a positive integer, got ${blockSize}`);
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.enableCaching = enableCaching;
    this.refCounts = new Int32Array(numBlocks);
    this.prev = new Int32Array(numBlocks).fill(NONE);
    this.next = new Int32Array(numBlocks).fill(NONE);
    this.inFree = new Uint8Array(numBlocks);
    this.hashes = new Float64Array(numBlocks);
    this.parentHashes = new Float64Array(numBlocks);
    this.blockTokens = new Array<Int32Array | null>(numBlocks).fill(null);
    for (let b = 0; b < numBlocks; b++) this.pushTail(b);
  }

  get numFreeBlocks(): number {
    return this.numFree;
  }

  /** Share of blocks in use (0..1). */
  get usage(): number {
    return 1 - this.numFree / this.numBlocks;
  }

  refCount(blockId: number): number {
    return this.refCounts[blockId]!;
  }

  /** Hash of a cached block, or 0. */
  blockHash(blockId: number): number {
    return this.hashes[blockId]!;
  }

  /** Take n blocks from the head of the free queue (evicting their cached contents); ref = 1 each. */
  allocate(n: number): number[] {
    invariant(n <= this.numFree, () => `allocate(${n}) with ${this.numFree} free blocks`);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = this.head;
      this.unlink(b);
      this.evict(b);
      this.refCounts[b] = 1;
      out.push(b);
    }
    return out;
  }

  /** Add one owner to each block (a prefix hit or a shared prompt block); revives free ones. */
  touch(blockIds: readonly number[]): void {
    for (const b of blockIds) {
      if (this.refCounts[b] === 0) {
        invariant(this.inFree[b] === 1, () => `block ${b} has ref 0 but is not free`);
        this.unlink(b);
      }
      this.refCounts[b]!++;
    }
  }

  /**
   * Drop one owner from each block, in the order given: blocks reaching ref 0 join the tail of the
   * free queue (so pass a sequence's blocks tail-first: its last blocks are evicted first).
   */
  free(blockIds: readonly number[]): void {
    for (const b of blockIds) {
      invariant(this.refCounts[b]! > 0, () => `double free of block ${b}`);
      if (--this.refCounts[b]! === 0) {
        // An uncached free block is worthless: put it at the head so cached blocks live longer.
        if (this.hashes[b] === 0) this.pushHead(b);
        else this.pushTail(b);
      }
    }
  }

  /** The cached block holding exactly these tokens after parentHash, or -1. */
  lookup(hash: number, parentHash: number, tokenIds: ArrayLike<number>, start: number): number {
    if (!this.enableCaching) return NONE;
    const b = this.cache.get(hash);
    if (b === undefined) return NONE;
    if (this.parentHashes[b] !== parentHash) return NONE;
    const toks = this.blockTokens[b]!;
    for (let i = 0; i < this.blockSize; i++) if (toks[i] !== tokenIds[start + i]) return NONE;
    return b;
  }

  /**
   * Register a full, computed block in the prefix cache. If another block already caches the same
   * contents this one stays uncached (it is still a valid private block).
   */
  cacheBlock(blockId: number, hash: number, parentHash: number, tokenIds: ArrayLike<number>, start: number): void {
    if (!this.enableCaching || this.hashes[blockId] !== 0) return;
    if (this.cache.has(hash)) return;
    this.hashes[blockId] = hash;
    this.parentHashes[blockId] = parentHash;
    const toks = new Int32Array(this.blockSize);
    for (let i = 0; i < this.blockSize; i++) toks[i] = tokenIds[start + i]!;
    this.blockTokens[blockId] = toks;
    this.cache.set(hash, blockId);
    this.events?.blockStored(hash, parentHash === ROOT_HASH ? null : parentHash, toks, this.blockSize);
  }

  /** Drop every cached (free) block's hash. Returns false if some block is still in use. */
  resetPrefixCache(): boolean {
    for (let b = 0; b < this.numBlocks; b++) if (this.refCounts[b] !== 0) return false;
    for (let b = 0; b < this.numBlocks; b++) this.evict(b, false);
    this.events?.allCleared();
    return true;
  }

  /** Hashes of the blocks in the prefix cache (what an event consumer should hold). For tests: O(cached). */
  cachedHashes(): number[] {
    return [...this.cache.keys()];
  }

  /** Free block ids in eviction order (head first). For tests and debugging: O(numBlocks). */
  freeQueue(): number[] {
    const out: number[] = [];
    for (let b = this.head; b !== NONE; b = this.next[b]!) out.push(b);
    return out;
  }

  stats(): BlockPoolStats {
    return { numTotalBlocks: this.numBlocks, numFreeBlocks: this.numFree, numCachedBlocks: this.cache.size, numEvictions: this.evictions };
  }

  private evict(b: number, announce = true): void {
    const h = this.hashes[b]!;
    if (h === 0) return;
    if (this.cache.get(h) === b) {
      this.cache.delete(h);
      if (announce) this.events?.blockRemoved(h);
    }
    this.hashes[b] = 0;
    this.parentHashes[b] = 0;
    this.blockTokens[b] = null;
    this.evictions++;
  }

  private pushTail(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = NONE;
    if (this.tail !== NONE) this.next[this.tail] = b;
    else this.head = b;
    this.tail = b;
    this.inFree[b] = 1;
    this.numFree++;
  }

  private pushHead(b: number): void {
    this.next[b] = this.head;
    this.prev[b] = NONE;
    if (this.head !== NONE) this.prev[this.head] = b;
    else this.tail = b;
    this.head = b;
    this.inFree[b] = 1;
    this.numFree++;
  }

  private unlink(b: number): void {
    invariant(this.inFree[b] === 1, () => `block ${b} is not in the free queue`);
    const p = this.prev[b]!;
    const n = this.next[b]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
    this.prev[b] = NONE;
    this.next[b] = NONE;
    this.inFree[b] = 0;
    this.numFree--;
  }
}
