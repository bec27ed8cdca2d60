// Test helper: a replica of a router's KV block index, built only from KV events (stored adds,
// removed deletes, cleared empties), checking on the way that the stream is coherent.
import assert from 'node:assert/strict';
import type { KvCacheEvent } from '../../src/engine/kv/kv-events.js';

/** Apply events to a replica of the cache index, checking they make sense on the way. */
export function replay(events: readonly KvCacheEvent[], into = new Set<number>(), everStored = new Set<number>()): Set<number> {
  for (const e of events) {
    if (e.kind === 'cleared') into.clear();
    else if (e.kind === 'removed') {
      for (const h of e.hashes) assert.ok(into.delete(h), `removed ${h} that is not cached`);
    } else {
      assert.equal(e.tokenIds.length, e.hashes.length * e.blockSize, 'tokens of every stored block');
      if (e.parentHash !== null) assert.ok(everStored.has(e.parentHash), `parent ${e.parentHash} was stored before`);
      for (const h of e.hashes) {
        assert.ok(!into.has(h), `stored ${h} twice`);
        into.add(h);
        everStored.add(h);
      }
    }
  }
  return into;
}
