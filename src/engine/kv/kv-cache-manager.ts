// KvCacheManager: gives sequences KV blocks. Allocate/append/free with ref counts over a BlockPool,
// prefix-cache hits (full blocks only, tokens compared), LRU eviction of free cached blocks through
// the pool's free queue. Running out of blocks returns false (never throws): the scheduler preempts.
import { invariant } from '../../util/invariant.js';
import type { Sequence } from '../request.js';
import type { BlockPool } from './block-pool.js';
import { extendBlockHashes, ROOT_HASH } from './prefix-hash.js';

export interface PrefixCacheStats {
  /** Tokens looked up in the prefix cache (each successful first schedule of a sequence). */
  readonly queriedTokens: number;
  /** Of those, tokens served from cached blocks. */
  readonly hitTokens: number;
}

export class KvCacheManager {
  readonly pool: BlockPool;
  readonly blockSize: number;
  private queried = 0;
  private hits = 0;

  constructor(pool: BlockPool) {
    this.pool = pool;
    this.blockSize = pool.blockSize;
  }

  get numFreeBlocks(): number {
    return this.pool.numFreeBlocks;
  }

  get numTotalBlocks(): number {
    return this.pool.numBlocks;
  }

  get usage(): number {
    return this.pool.usage;
  }

  prefixCacheStats(): PrefixCacheStats {
    return { queriedTokens: this.queried, hitTokens: this.hits };
  }

  /** Blocks needed to hold numTokens tokens. */
  blocksFor(numTokens: number): number {
    return Math.ceil(numTokens / this.blockSize);
  }

  /**
   * For a sequence holding no blocks: the longest run of already-computed full blocks holding its
   * leading tokens (the prefix cache, or the prompt blocks of the sequence it shares a prompt
   * with). At most numTokens - 1 tokens are covered, so the last token is always computed (its
   * logits are needed).
   */
  findComputedBlocks(seq: Sequence): number[] {
    invariant(seq.blockIds.length === 0, () => `${seq.seqId} already holds blocks`);
    const maxBlocks = Math.floor((seq.numTokens - 1) / this.blockSize);
    const out: number[] = [];
    if (maxBlocks <= 0) return out;
    if (this.pool.enableCaching) {
      extendBlockHashes(seq.blockHashes, seq.tokenIds, maxBlocks * this.blockSize, this.blockSize);
      let parent = ROOT_HASH;
      for (let i = 0; i < maxBlocks; i++) {
        const h = seq.blockHashes[i]!;
        const b = this.pool.lookup(h, parent, seq.tokenIds, i * this.blockSize);
        if (b < 0) break;
        out.push(b);
        parent = h;
      }
    }
    const src = seq.sharePromptFrom;
    if (src !== null && src.status === 'running') {
      // Share the source's computed full prompt blocks (covers prefix caching being off).
      const shareable = Math.min(
        Math.floor((seq.numPromptTokens - 1) / this.blockSize),
        Math.floor(src.numComputedTokens / this.blockSize),
        maxBlocks,
      );
      if (shareable > out.length) return src.blockIds.slice(0, shareable);
    }
    return out;
  }

  /**
   * Make room for numNewTokens more tokens of seq (after adopting computedBlocks from
   * findComputedBlocks if it holds none). On success the sequence owns the blocks (and its
   * numComputedTokens covers computedBlocks); false when the pool cannot supply them (nothing changes).
   */
  allocateSlots(seq: Sequence, numNewTokens: number, computedBlocks: readonly number[] = []): boolean {
    invariant(computedBlocks.length === 0 || seq.blockIds.length === 0, 'computed blocks for a sequence holding blocks');
    const numComputed = computedBlocks.length > 0 ? computedBlocks.length * this.blockSize : seq.numComputedTokens;
    const numHeld = seq.blockIds.length + computedBlocks.length;
    const numNeeded = Math.max(0, this.blocksFor(numComputed + numNewTokens) - numHeld);
    let numRevived = 0; // cached blocks sitting in the free queue that a hit takes out of it
    for (const b of computedBlocks) if (this.pool.refCount(b) === 0) numRevived++;
    if (numNeeded + numRevived > this.pool.numFreeBlocks) return false;
    if (computedBlocks.length > 0) {
      this.pool.touch(computedBlocks);
      seq.blockIds.push(...computedBlocks);
      seq.numComputedTokens = numComputed;
    }
    if (numNeeded > 0) seq.blockIds.push(...this.pool.allocate(numNeeded));
    return true;
  }

  /** Count a successful first lookup for the prefix-cache hit rate. */
  recordPrefixQuery(numQueriedTokens: number, numHitTokens: number): void {
    this.queried += numQueriedTokens;
    this.hits += numHitTokens;
  }

  /** Register the sequence's full, computed blocks in the prefix cache (call after a step ran). */
  cacheComputedBlocks(seq: Sequence): void {
    if (!this.pool.enableCaching) return;
    const numFull = Math.min(Math.floor(seq.numComputedTokens / this.blockSize), seq.blockIds.length);
    if (numFull <= seq.numCommittedBlocks) return;
    extendBlockHashes(seq.blockHashes, seq.tokenIds, numFull * this.blockSize, this.blockSize);
    for (let i = seq.numCommittedBlocks; i < numFull; i++) {
      const b = seq.blockIds[i]!;
      if (this.pool.blockHash(b) !== 0) continue;
      this.pool.cacheBlock(b, seq.blockHashes[i]!, i === 0 ? ROOT_HASH : seq.blockHashes[i - 1]!, seq.tokenIds, i * this.blockSize);
    }
    seq.numCommittedBlocks = numFull;
  }

  /** Release all of a sequence's blocks, tail first (so its last blocks are evicted first). */
  free(seq: Sequence): void {
    if (seq.blockIds.length === 0) return;
    const rev = seq.blockIds.slice().reverse();
    seq.blockIds = [];
    seq.numCommittedBlocks = 0;
    this.pool.free(rev);
  }
}
