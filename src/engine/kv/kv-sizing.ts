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
    throw new TokenmillError('invalid_argument', `KV cache budget of ${kvCacheBytes} bytes is below one block (${bytesPerBlock} bytes = ${blockSize} tokens x ${kvBytesPerToken} bytes)`);
  }
  return n;
}
