// BlockPool + prefix hash: exact block ids, free-queue (eviction) order, prefix-cache hits with
// token comparison, and a property test that free + used = total and ref counts never go negative.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BlockPool } from '../../src/engine/kv/block-pool.js';
import { extendBlockHashes, hashBlock, ROOT_HASH } from '../../src/engine/kv/prefix-hash.js';

test('a fresh pool hands out blocks in id order', () => {
  const p = new BlockPool(6, 4);
  assert.deepEqual(p.freeQueue(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(p.allocate(2), [0, 1]);
  assert.deepEqual(p.allocate(1), [2]);
  assert.equal(p.numFreeBlocks, 3);
  assert.equal(p.refCount(0), 1);
  assert.equal(p.refCount(3), 0);
});

test('freed cached blocks join the tail (LRU), uncached ones the head', () => {
  const p = new BlockPool(6, 2);
  const toks = [1, 2, 3, 4, 5];
  const [a, b, c] = p.allocate(3) as [number, number, number]; // 0, 1, 2
  const h0 = hashBlock(ROOT_HASH, toks, 0, 2);
  const h1 = hashBlock(h0, toks, 2, 4);
  p.cacheBlock(a, h0, ROOT_HASH, toks, 0);
  p.cacheBlock(b, h1, h0, toks, 2);
  // Free tail first, as the KV manager does: c (partial, uncached) -> head; b, a -> tail.
  p.free([c, b, a]);
  assert.deepEqual(p.freeQueue(), [2, 3, 4, 5, 1, 0]);
  // Allocating 4 takes the uncached ones first; the cached blocks survive.
  assert.deepEqual(p.allocate(4), [2, 3, 4, 5]);
  assert.equal(p.lookup(h0, ROOT_HASH, toks, 0), 0);
  assert.equal(p.lookup(h1, h0, toks, 2), 1);
  // The next allocation evicts the least recently freed cached block: 1 (the tail of the sequence).
  assert.deepEqual(p.allocate(1), [1]);
  assert.equal(p.lookup(h1, h0, toks, 2), -1);
  assert.equal(p.lookup(h0, ROOT_HASH, toks, 0), 0);
  assert.equal(p.stats().numEvictions, 1);
});

test('a hit takes a free cached block out of the middle of the queue', () => {
  const p = new BlockPool(4, 2);
  const toks = [7, 8];
  const [a] = p.allocate(1) as [number];
  const h = hashBlock(ROOT_HASH, toks);
  p.cacheBlock(a, h, ROOT_HASH, toks, 0);
  p.free([a]);
  assert.deepEqual(p.freeQueue(), [1, 2, 3, 0]);
  p.allocate(1); // 1
  const hit = p.lookup(h, ROOT_HASH, toks, 0);
  assert.equal(hit, 0);
  p.touch([hit]);
  assert.deepEqual(p.freeQueue(), [2, 3]);
  assert.equal(p.refCount(0), 1);
  p.touch([hit]);
  assert.equal(p.refCount(0), 2);
  p.free([hit]);
  assert.deepEqual(p.freeQueue(), [2, 3]);
  p.free([hit]);
  assert.deepEqual(p.freeQueue(), [2, 3, 0]);
});

test('lookup compares tokens and the parent hash, not only the hash', () => {
  const p = new BlockPool(2, 2);
  const [a] = p.allocate(1) as [number];
  p.cacheBlock(a, 42, ROOT_HASH, [1, 2], 0);
  assert.equal(p.lookup(42, ROOT_HASH, [1, 2], 0), a);
  assert.equal(p.lookup(42, ROOT_HASH, [1, 3], 0), -1, 'same hash, other tokens: a collision is not a hit');
  assert.equal(p.lookup(42, 7, [1, 2], 0), -1, 'other parent');
});

test('prefix caching disabled: nothing is cached or found', () => {
  const p = new BlockPool(2, 2, false);
  const [a] = p.allocate(1) as [number];
  p.cacheBlock(a, 5, ROOT_HASH, [1, 2], 0);
  assert.equal(p.lookup(5, ROOT_HASH, [1, 2], 0), -1);
  assert.equal(p.stats().numCachedBlocks, 0);
});

test('the hash chain covers full blocks only and depends on every earlier token', () => {
  const a = extendBlockHashes([], [1, 2, 3, 4, 5], 5, 2);
  assert.equal(a.length, 2);
  const b = extendBlockHashes([], [9, 2, 3, 4], 4, 2);
  assert.notEqual(a[1], b[1], 'same block tokens, different prefix');
  const c = extendBlockHashes([a[0]!], [1, 2, 3, 4, 5, 6], 6, 2);
  assert.deepEqual(c.slice(0, 2), a);
  assert.equal(c.length, 3);
  assert.equal(hashBlock(ROOT_HASH, [1, 2]), hashBlock(ROOT_HASH, [0, 1, 2, 3], 1, 3));
});

test('property: random allocate/touch/free keep free + used = total and refs consistent', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 24 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 1000 })), { maxLength: 200 }),
      (n, ops) => {
        const p = new BlockPool(n, 2);
        const owners: number[][] = []; // each owner holds a list of block ids
        for (const [op, r] of ops) {
          if (op === 0 && p.numFreeBlocks > 0) {
            owners.push(p.allocate(1 + (r % p.numFreeBlocks)));
          } else if (op === 1 && owners.length > 0) {
            const o = owners.splice(r % owners.length, 1)[0]!;
            p.free(o.slice().reverse());
          } else if (op === 2 && owners.length > 0) {
            const src = owners[r % owners.length]!;
            const shared = src.slice(0, 1 + (r % src.length));
            p.touch(shared);
            owners.push(shared);
          } else if (op === 3 && owners.length > 0) {
            const o = owners[r % owners.length]!;
            const b = o[0]!;
            if (p.blockHash(b) === 0) p.cacheBlock(b, 1 + (r % 5), ROOT_HASH, [r, r], 0);
          }
          const refs = new Map<number, number>();
          for (const o of owners) for (const b of o) refs.set(b, (refs.get(b) ?? 0) + 1);
          let used = 0;
          for (let b = 0; b < n; b++) {
            assert.equal(p.refCount(b), refs.get(b) ?? 0);
            if (p.refCount(b) > 0) used++;
          }
          assert.equal(p.numFreeBlocks + used, n);
          assert.equal(p.freeQueue().length, p.numFreeBlocks);
        }
      },
    ),
    { numRuns: 200 },
  );
});
