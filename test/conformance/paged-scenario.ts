// Builds paged-attention scenarios for the conformance suite: sequences with context and new tokens,
// physical blocks handed out in shuffled order, a block table with garbage in unused entries, and a
// cache whose slots outside every context can be poisoned (NaN) to catch kernels that read them.
import type { AttentionMetadata } from '../../src/runtime/backend.js';
import type { FloatDType } from '../../src/runtime/dtype.js';
import type { Harness, Pair } from './helpers.js';

export interface SeqSpec {
  /** Context length after this step (seqLens[s]), including the new tokens. */
  readonly ctx: number;
  /** New tokens this step (query rows). */
  readonly qLen: number;
}

export interface PagedSpec {
  readonly seqs: readonly SeqSpec[];
  readonly H: number;
  readonly Hkv: number;
  readonly Dh: number;
  readonly blockSize: number;
  /** Blocks that belong to no sequence. */
  readonly spareBlocks?: number;
  /** What fills cache slots outside every context: random values, or NaN. */
  readonly unused?: 'random' | 'nan';
  /** What fills block-table entries past a sequence's last block ("may hold anything"). */
  readonly tableFill?: 'negative' | 'huge' | 'zero';
  /** KV cache dtype on both sides (f16/bf16 caches: bits uploaded, identical values); default computeDType / f32. */
  readonly cacheDType?: FloatDType;
}

export interface PagedScenario {
  readonly numTokens: number;
  readonly numBlocks: number;
  /** [numBlocks, blockSize, Hkv, Dh] each, computeDType on the backend. */
  readonly k: Pair;
  readonly v: Pair;
  readonly meta: { be: AttentionMetadata; ref: AttentionMetadata };
  /** Flattened slot of each sequence's key positions, in order. */
  readonly slots: readonly (readonly number[])[];
  /** Slot of each new token (what kvWrite's slotMapping would hold). */
  readonly tokenSlots: readonly number[];
}

export function buildPaged(h: Harness, spec: PagedSpec): PagedScenario {
  const { seqs, Hkv, Dh, blockSize: BS } = spec;
  const blocksOf = seqs.map((s) => Math.ceil(s.ctx / BS));
  const numBlocks = blocksOf.reduce((a, b) => a + b, 0) + (spec.spareBlocks ?? 2);
  const free = h.rng.shuffle(Array.from({ length: numBlocks }, (_, i) => i));
  const width = Math.max(1, ...blocksOf) + 1; // at least one unused entry per row
  const fill = spec.tableFill === 'huge' ? numBlocks + 1000 : spec.tableFill === 'zero' ? 0 : -1;
  const table = new Array<number>(seqs.length * width).fill(fill);
  const slots: number[][] = [];
  const tokenSlots: number[] = [];
  seqs.forEach((s, i) => {
    for (let b = 0; b < blocksOf[i]!; b++) table[i * width + b] = free.pop()!;
    const seqSlots = Array.from({ length: s.ctx }, (_, p) => table[i * width + Math.floor(p / BS)]! * BS + (p % BS));
    slots.push(seqSlots);
    tokenSlots.push(...seqSlots.slice(s.ctx - s.qLen));
  });
  const row = Hkv * Dh;
  const kv = [h.rng.normals(numBlocks * BS * row), h.rng.normals(numBlocks * BS * row)];
  if (spec.unused === 'nan') {
    const used = new Uint8Array(numBlocks * BS);
    for (const ss of slots) for (const slot of ss) used[slot] = 1;
    for (const a of kv) for (let slot = 0; slot < used.length; slot++) if (!used[slot]) a.fill(NaN, slot * row, (slot + 1) * row);
  }
  const shape = [numBlocks, BS, Hkv, Dh];
  const qsl = [0];
  for (const s of seqs) qsl.push(qsl[qsl.length - 1]! + s.qLen);
  const q = h.ints([seqs.length + 1], qsl);
  const l = h.ints(
    [seqs.length],
    seqs.map((s) => s.ctx),
  );
  const bt = h.ints([seqs.length, width], table);
  const common = {
    numSeqs: seqs.length,
    maxQueryLen: Math.max(0, ...seqs.map((s) => s.qLen)),
    maxSeqLen: Math.max(0, ...seqs.map((s) => s.ctx)),
  };
  return {
    numTokens: qsl[seqs.length]!,
    numBlocks,
    k: spec.cacheDType !== undefined ? h.typed(shape, spec.cacheDType, kv[0]!) : h.act(shape, kv[0]!),
    v: spec.cacheDType !== undefined ? h.typed(shape, spec.cacheDType, kv[1]!) : h.act(shape, kv[1]!),
    meta: {
      be: { ...common, queryStartLoc: q.be, seqLens: l.be, blockTables: bt.be },
      ref: { ...common, queryStartLoc: q.ref, seqLens: l.ref, blockTables: bt.ref },
    },
    slots,
    tokenSlots,
  };
}
