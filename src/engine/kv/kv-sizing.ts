// KV pool sizing: how many blocks a memory budget buys. numBlocks = floor(bytes / (blockSize x
// kvBytesPerToken)), where kvBytesPerToken (CausalLM.kvBytesPerToken) spans K and V of every layer.
import { TokenmillError } from '../../util/errors.js';

export function numBlocksForMemory(kvCacheBytes: number, kvBytesPerToken: number, blockSize: number): number {
  if (!(kvCacheBytes > 0) || !Number.isFinite(kvCacheBytes)) {
    throw new TokenmillError('invalid_argument', `KV cache budget must be a positive number of bytes, got ${kvCacheBytes}`);
  }
  const bytesPerBlock = kvBytesPerToken * blockSize;
  const n = Math.floor(kvCacheBytes / bytesPerBlock);
  if (n < 1) {
    throw new TokenmillError(
      'invalid_argument',
      `KV cache budget of ${kvCacheBytes} bytes is below one block (${bytesPerBlock} bytes = ${blockSize} tokens x ` +
        `${kvBytesPerToken} bytes)`,
    );
  }
  return n;
}

export interface KvBudgetInputs {
  /** Bytes free for the KV pool right now (after weights): host free memory or device free memory. */
  readonly freeBytes: number;
  /** Share of freeBytes the pool may take (vLLM's gpu_memory_utilization plays this role). */
  readonly share: number;
  readonly kvBytesPerToken: number;
  /** Tokens the pool would need to hold every sequence at full length: no point going beyond. */
  readonly maxUsefulTokens: number;
  readonly blockSize: number;
}

/**
 * The default KV budget when the user names none: a share of the memory free after the weights are
 * loaded, capped at what maxNumSeqs sequences of maxModelLen tokens could ever use, and at least
 * one block per sequence's worth of a small floor (16 blocks) so tiny machines still serve.
 */
export function defaultKvCacheBytes(o: KvBudgetInputs): number {
  if (!(o.share > 0 && o.share <= 1)) {
    throw new TokenmillError('invalid_argument', `KV cache share must be in (0, 1], got ${o.share}`);
  }
  const bytesPerBlock = o.kvBytesPerToken * o.blockSize;
  const fromFree = Math.floor(Math.max(0, o.freeBytes) * o.share);
  const useful = Math.ceil(o.maxUsefulTokens / o.blockSize) * bytesPerBlock;
  const floor = 16 * bytesPerBlock;
  return Math.max(floor, Math.min(fromFree, useful));
}
