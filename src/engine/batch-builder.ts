// BatchBuilder: flattens a SchedulerOutput into StepInputs (token ids, positions, slot mapping,
// queryStartLoc, seqLens, block tables, logits rows). Host staging arrays and device tensors are
// allocated once for the largest step; each step uploads into views of them (views are cached per
// size), so building a batch never allocates device memory. Embedding entries add hidden rows
// (pooling.ts) instead of logits rows. buildDecodePadded() fills the same
// views for a decode step padded to a graph bucket (graph-cache.ts).
import type { AttentionMetadata, Backend, Tensor } from '../runtime/backend.js';
import type { StepInputs } from '../model/types.js';
import { invariant } from '../util/invariant.js';
import { pooledRowsOf } from './pooling.js';
import type { SchedulerOutput, ScheduledSequence } from './scheduler.js';

export interface BatchBuilderOptions {
  readonly maxNumTokens: number;
  readonly maxNumSeqs: number;
  /** Block-table width: ceil(maxModelLen / blockSize). */
  readonly maxBlocksPerSeq: number;
  readonly blockSize: number;
}

export interface BuiltBatch {
  readonly inputs: StepInputs;
  /** For each logits row: the scheduled entry it samples for (null for a placeholder row). */
  readonly logitsFor: readonly (ScheduledSequence | null)[];
  /** Embedding entries: which rows of the model's hidden output (inputs.hiddenRows order) are theirs. */
  readonly hiddenFor: readonly HiddenRowsFor[];
}

export interface HiddenRowsFor {
  readonly entry: ScheduledSequence;
  /** First row in the hidden output, and how many consecutive rows belong to this entry. */
  readonly firstRow: number;
  readonly numRows: number;
}

export class BatchBuilder {
  readonly opts: BatchBuilderOptions;
  private readonly backend: Backend;
  // Host staging (sized for the largest step).
  private readonly hTokens: Int32Array;
  private readonly hPositions: Int32Array;
  private readonly hSlots: Int32Array;
  private readonly hQsl: Int32Array;
  private readonly hSeqLens: Int32Array;
  private readonly hBlockTables: Int32Array;
  private readonly hLogitsRows: Int32Array;
  private readonly hHiddenRows: Int32Array;
  // Device buffers (allocated once).
  private readonly dTokens: Tensor;
  private readonly dPositions: Tensor;
  private readonly dSlots: Tensor;
  private readonly dQsl: Tensor;
  private readonly dSeqLens: Tensor;
  private readonly dBlockTables: Tensor;
  private readonly dLogitsRows: Tensor;
  private readonly dHiddenRows: Tensor;
  private readonly views = new Map<string, Tensor>();

  constructor(backend: Backend, opts: BatchBuilderOptions) {
    invariant(opts.maxNumTokens > 0 && opts.maxNumSeqs > 0 && opts.maxBlocksPerSeq > 0, 'batch builder sizes must be positive');
    this.backend = backend;
    this.opts = opts;
    const T = opts.maxNumTokens;
    const S = opts.maxNumSeqs;
    this.hTokens = new Int32Array(T);
    this.hPositions = new Int32Array(T);
    this.hSlots = new Int32Array(T);
    this.hQsl = new Int32Array(S + 1);
    this.hSeqLens = new Int32Array(S);
    this.hBlockTables = new Int32Array(S * opts.maxBlocksPerSeq);
    this.hLogitsRows = new Int32Array(S);
    this.hHiddenRows = new Int32Array(T);
    const taken: Tensor[] = [];
    const alloc = (shape: number[]): Tensor => {
      try {
        const t = backend.alloc(shape, 'i32');
        taken.push(t);
        return t;
      } catch (e) {
        for (const t of taken) backend.free(t); // nothing leaks when the device is full
        throw e;
      }
    };
    this.dTokens = alloc([T]); // [maxNumTokens]
    this.dPositions = alloc([T]);
    this.dSlots = alloc([T]);
    this.dQsl = alloc([S + 1]); // [maxNumSeqs + 1]
    this.dSeqLens = alloc([S]); // [maxNumSeqs]
    this.dBlockTables = alloc([S, opts.maxBlocksPerSeq]); // [maxNumSeqs, maxBlocksPerSeq]
    this.dLogitsRows = alloc([S]);
    this.dHiddenRows = alloc([T]); // [maxNumTokens]: embedding rows (mean pooling may want all)
  }

  build(out: SchedulerOutput): BuiltBatch {
    const { blockSize, maxBlocksPerSeq } = this.opts;
    const entries = out.scheduled;
    const S = entries.length;
    const T = out.totalNumScheduledTokens;
    invariant(S > 0 && S <= this.opts.maxNumSeqs, () => `step with ${S} sequences (max ${this.opts.maxNumSeqs})`);
    invariant(T > 0 && T <= this.opts.maxNumTokens, () => `step with ${T} tokens (max ${this.opts.maxNumTokens})`);
    const logitsFor: (ScheduledSequence | null)[] = [];
    const hiddenFor: HiddenRowsFor[] = [];
    let numHidden = 0;
    let t = 0;
    let maxQ = 0;
    let maxSeqLen = 0;
    this.hQsl[0] = 0;
    for (let s = 0; s < S; s++) {
      const e = entries[s]!;
      const seq = e.seq;
      const blocks = seq.blockIds;
      const start = e.numComputedBefore;
      const end = start + e.numTokens;
      invariant(end <= seq.numTokens, () => `${seq.seqId}: scheduled past its tokens`);
      invariant(
        blocks.length * blockSize >= end && blocks.length <= maxBlocksPerSeq,
        () => `${seq.seqId}: ${blocks.length} blocks for ${end} tokens`,
      );
      for (let p = start; p < end; p++, t++) {
        this.hTokens[t] = seq.tokenIds[p]!;
        this.hPositions[t] = p;
        this.hSlots[t] = blocks[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
      }
      this.hQsl[s + 1] = t;
      this.hSeqLens[s] = end;
      const row = s * maxBlocksPerSeq;
      for (let b = 0; b < maxBlocksPerSeq; b++) this.hBlockTables[row + b] = b < blocks.length ? blocks[b]! : 0;
      if (e.sample) {
        this.hLogitsRows[logitsFor.length] = t - 1;
        logitsFor.push(e);
      }
      const pooling = seq.request.pooling;
      const numRows = pooling === null ? 0 : pooledRowsOf(pooling, end, seq.numPromptTokens, e.numTokens);
      if (numRows > 0) {
        hiddenFor.push({ entry: e, firstRow: numHidden, numRows });
        for (let r = t - numRows; r < t; r++) this.hHiddenRows[numHidden++] = r;
      }
      maxQ = Math.max(maxQ, e.numTokens);
      maxSeqLen = Math.max(maxSeqLen, end);
    }
    if (logitsFor.length === 0) {
      // A pure prefill-chunk step: ask for one row anyway (models need numLogits >= 1) and ignore it.
      this.hLogitsRows[0] = T - 1;
      logitsFor.push(null);
    }
    const L = logitsFor.length;
    const b = this.backend;
    const { tokenIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsRows } = this.uploadInputs(
      T,
      S,
      L,
      maxBlocksPerSeq,
    );
    let hiddenRows: Tensor | null = null;
    if (numHidden > 0) {
      hiddenRows = this.view('hid', this.dHiddenRows, [numHidden]);
      b.upload(hiddenRows, this.hHiddenRows.subarray(0, numHidden));
    }
    const attention: AttentionMetadata = { numSeqs: S, maxQueryLen: maxQ, maxSeqLen, queryStartLoc, seqLens, blockTables };
    return {
      inputs: { numTokens: T, tokenIds, positions, slotMapping, attention, logitsRows, numLogits: L, hiddenRows, numHiddenRows: numHidden },
      logitsFor,
      hiddenFor,
    };
  }

  /**
   * A pure-decode step (every entry 1 new token, sampled) padded to `bucket` rows for graph replay;
   * `out` null gives an all-padding batch (used to capture). Real rows first; padding rows have
   * token 0, position 0, slot -1 (no KV write), seqLen 1 over a block-table row of block 0, and their
   * logits rows exist but are ignored (logitsFor lists the real rows only). maxSeqLen is the
   * block-table capacity, so every host value is the same each step of this bucket and the device
   * tensors (the same views as build() uses for `bucket` tokens) are the only inputs that change.
   */
  buildDecodePadded(out: SchedulerOutput | null, bucket: number): BuiltBatch {
    const { blockSize, maxBlocksPerSeq } = this.opts;
    const entries = out?.scheduled ?? [];
    const S = entries.length;
    invariant(
      bucket >= 1 && bucket <= this.opts.maxNumSeqs && bucket <= this.opts.maxNumTokens && S <= bucket,
      () => `decode bucket ${bucket} for ${S} sequences`,
    );
    const logitsFor: ScheduledSequence[] = [];
    for (let s = 0; s < bucket; s++) {
      const row = s * maxBlocksPerSeq;
      this.hQsl[s] = s;
      this.hLogitsRows[s] = s;
      if (s >= S) {
        this.hTokens[s] = 0;
        this.hPositions[s] = 0;
        this.hSlots[s] = -1;
        this.hSeqLens[s] = 1;
        this.hBlockTables.fill(0, row, row + maxBlocksPerSeq);
        continue;
      }
      const e = entries[s]!;
      const seq = e.seq;
      const blocks = seq.blockIds;
      const p = e.numComputedBefore;
      invariant(e.numTokens === 1 && e.sample && p < seq.numTokens, () => `${seq.seqId}: not a decode entry`);
      invariant(
        blocks.length * blockSize > p && blocks.length <= maxBlocksPerSeq,
        () => `${seq.seqId}: ${blocks.length} blocks for ${p + 1} tokens`,
      );
      this.hTokens[s] = seq.tokenIds[p]!;
      this.hPositions[s] = p;
      this.hSlots[s] = blocks[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
      this.hSeqLens[s] = p + 1;
      for (let b = 0; b < maxBlocksPerSeq; b++) this.hBlockTables[row + b] = b < blocks.length ? blocks[b]! : 0;
      logitsFor.push(e);
    }
    this.hQsl[bucket] = bucket;
    const B = bucket;
    const { tokenIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsRows } = this.uploadInputs(
      B,
      B,
      B,
      maxBlocksPerSeq,
    );
    const attention: AttentionMetadata = {
      numSeqs: B,
      maxQueryLen: 1,
      maxSeqLen: maxBlocksPerSeq * blockSize,
      queryStartLoc,
      seqLens,
      blockTables,
    };
    return { inputs: { numTokens: B, tokenIds, positions, slotMapping, attention, logitsRows, numLogits: B }, logitsFor, hiddenFor: [] };
  }

  /** Release the device buffers (views die with them). */
  dispose(): void {
    this.views.clear();
    for (const t of [
      this.dTokens,
      this.dPositions,
      this.dSlots,
      this.dQsl,
      this.dSeqLens,
      this.dBlockTables,
      this.dLogitsRows,
      this.dHiddenRows,
    ])
      this.backend.free(t);
  }

  /** Views of the device input buffers for this step, filled from the host staging arrays. */
  private uploadInputs(numTokens: number, numSeqs: number, numLogits: number, maxBlocksPerSeq: number) {
    const b = this.backend;
    const tokenIds = this.view('tok', this.dTokens, [numTokens]);
    const positions = this.view('pos', this.dPositions, [numTokens]);
    const slotMapping = this.view('slot', this.dSlots, [numTokens]);
    const queryStartLoc = this.view('qsl', this.dQsl, [numSeqs + 1]);
    const seqLens = this.view('len', this.dSeqLens, [numSeqs]);
    const blockTables = this.view('bt', this.dBlockTables, [numSeqs, maxBlocksPerSeq]);
    const logitsRows = this.view('rows', this.dLogitsRows, [numLogits]);
    b.upload(tokenIds, this.hTokens.subarray(0, numTokens));
    b.upload(positions, this.hPositions.subarray(0, numTokens));
    b.upload(slotMapping, this.hSlots.subarray(0, numTokens));
    b.upload(queryStartLoc, this.hQsl.subarray(0, numSeqs + 1));
    b.upload(seqLens, this.hSeqLens.subarray(0, numSeqs));
    b.upload(blockTables, this.hBlockTables.subarray(0, numSeqs * maxBlocksPerSeq));
    b.upload(logitsRows, this.hLogitsRows.subarray(0, numLogits));
    return { tokenIds, positions, slotMapping, queryStartLoc, seqLens, blockTables, logitsRows };
  }

  private view(name: string, base: Tensor, shape: readonly number[]): Tensor {
    const key = `${name}:${shape[0]}`;
    let v = this.views.get(key);
    if (v === undefined) {
      v = this.backend.view(base, shape, 0);
      this.views.set(key, v);
    }
    return v;
  }
}
