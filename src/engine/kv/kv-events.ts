// KV cache events: what the block pool tells an outside index (a router's prefix-cache scorer) about
// its prefix cache. A full block gets its hash -> stored; a cached block is evicted -> removed; the
// whole cache is dropped -> cleared. KvEventBuffer keeps them in order for one engine step and joins
// runs (consecutive blocks of one chain into one stored event, consecutive removals into one), the
// batches vLLM publishes. It never does I/O: a sink (server/kv-events-publisher.ts) sends the batch.

export type KvCacheEvent =
  | {
      readonly kind: 'stored';
      readonly hashes: number[];
      readonly parentHash: number | null;
      readonly tokenIds: number[];
      readonly blockSize: number;
    }
  | { readonly kind: 'removed'; readonly hashes: number[] }
  | { readonly kind: 'cleared' };

/** What the block pool calls. Must not throw into the engine. */
export interface KvEventListener {
  /** A full block was registered under hash; parentHash is the previous block's (null for a first block). */
  blockStored(hash: number, parentHash: number | null, tokenIds: ArrayLike<number>, blockSize: number): void;
  /** The block cached under hash left the prefix cache. */
  blockRemoved(hash: number): void;
  /** Every cached block was dropped (prefix cache reset). */
  allCleared(): void;
}

/** What the engine hands a step's events to, once per step that produced any. */
export interface KvEventSink {
  publish(events: readonly KvCacheEvent[]): void;
}

export class KvEventBuffer implements KvEventListener {
  private events: KvCacheEvent[] = [];

  blockStored(hash: number, parentHash: number | null, tokenIds: ArrayLike<number>, blockSize: number): void {
    const last = this.events.at(-1);
    const toks = Array.from(tokenIds);
    if (last?.kind === 'stored' && last.blockSize === blockSize && parentHash !== null && last.hashes.at(-1) === parentHash) {
      last.hashes.push(hash);
      last.tokenIds.push(...toks);
      return;
    }
    this.events.push({ kind: 'stored', hashes: [hash], parentHash, tokenIds: toks, blockSize });
  }

  blockRemoved(hash: number): void {
    const last = this.events.at(-1);
    if (last?.kind === 'removed') last.hashes.push(hash);
    else this.events.push({ kind: 'removed', hashes: [hash] });
  }

  allCleared(): void {
    this.events.push({ kind: 'cleared' });
  }

  get size(): number {
    return this.events.length;
  }

  /** The events since the last drain, in order. */
  drain(): KvCacheEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }
}
