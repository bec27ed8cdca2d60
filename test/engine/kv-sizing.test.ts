// Default KV budget: a share of free memory, capped at what full-length sequences could use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultKvCacheBytes, numBlocksForMemory } from '../../src/engine/kv/kv-sizing.js';

test('default KV budget takes the share of free memory, capped at the useful size, floored at 16 blocks', () => {
  const base = { kvBytesPerToken: 1000, blockSize: 16 };
  // share-limited: 1e9 free x 0.25 = 2.5e8 < useful 64 x 4096 x 1000 = 2.62e8
  assert.equal(defaultKvCacheBytes({ ...base, freeBytes: 1e9, share: 0.25, maxUsefulTokens: 64 * 4096 }), 250_000_000);
  // useful-limited: 10 sequences x 100 tokens -> ceil(1000 / 16) = 63 blocks x 16,000 bytes
  assert.equal(defaultKvCacheBytes({ ...base, freeBytes: 1e12, share: 0.9, maxUsefulTokens: 1000 }), 63 * 16_000);
  // nothing free: still 16 blocks so a tiny machine serves
  assert.equal(defaultKvCacheBytes({ ...base, freeBytes: 0, share: 0.5, maxUsefulTokens: 1e6 }), 16 * 16_000);
  assert.equal(numBlocksForMemory(16 * 16_000, 1000, 16), 16);
  assert.throws(() => defaultKvCacheBytes({ ...base, freeBytes: 1e9, share: 0, maxUsefulTokens: 10 }), /share/);
  assert.throws(() => defaultKvCacheBytes({ ...base, freeBytes: 1e9, share: 1.5, maxUsefulTokens: 10 }), /share/);
});
