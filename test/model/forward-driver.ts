// ForwardDriver (test harness): feeds ONE sequence's tokens, chosen by the test, through
// CausalLM.forward and returns the logits, for model-layer checks (teacher forcing, every prompt
// row's logits, parity with a dense forward or another framework). Not a generation path: generation,
// the golden tests and the benches go through the Engine (src/engine/generate.ts).
// Contiguous block table (blocks 0..n-1, so slot == position); prefill is chunked by maxTokensPerStep.
import type { AttentionMetadata, Backend, KvLayer, Tensor } from '../../src/runtime/backend.js';
import { TokenmillError } from '../../src/util/errors.js';
import { freeKvCache } from '../../src/model/decoder-model.js';
import type { CausalLM, StepInputs } from '../../src/model/types.js';

export interface ForwardDriverOptions {
  /** KV block size in tokens (default 16). */
  readonly blockSize?: number;
  /** Longest context this driver supports (default min(maxPositionEmbeddings, 2048)). */
  readonly maxSeqLen?: number;
}

export class ForwardDriver {
  readonly kvCache: KvLayer[];
  readonly maxSeqLen: number;
  readonly blockSize: number;
  /** Tokens already in the KV cache. */
  position = 0;
  private readonly b: Backend;
  private readonly owned: Tensor[] = [];
  private readonly inputs: Record<'tokenIds' | 'positions' | 'slotMapping' | 'logitsRows', Tensor>;
  private readonly queryStartLoc: Tensor; // i32 [2]
  private readonly seqLens: Tensor; // i32 [1]
  private readonly blockTables: Tensor; // i32 [1, numBlocks]
  private readonly chunk: number;
  private readonly logitsChunk: number;

  constructor(
    readonly model: CausalLM,
    opts: ForwardDriverOptions = {},
  ) {
    this.b = model.backend;
    this.blockSize = opts.blockSize ?? 16;
    this.maxSeqLen = opts.maxSeqLen ?? Math.min(model.config.maxPositionEmbeddings, 2048);
    const numBlocks = Math.ceil(this.maxSeqLen / this.blockSize);
    this.chunk = model.maxTokensPerStep;
    this.logitsChunk = Math.min(this.chunk, model.maxLogitsPerStep ?? this.chunk);
    const i32 = (shape: number[]): Tensor => {
      const t = this.b.alloc(shape, 'i32');
      this.owned.push(t);
      return t;
    };
    this.inputs = {
      tokenIds: i32([this.chunk]),
      positions: i32([this.chunk]),
      slotMapping: i32([this.chunk]),
      logitsRows: i32([this.chunk]),
    };
    this.queryStartLoc = i32([2]);
    this.seqLens = i32([1]);
    this.blockTables = i32([1, numBlocks]);
    this.b.upload(
      this.blockTables,
      Int32Array.from({ length: numBlocks }, (_, i) => i),
    );
    this.kvCache = model.allocKvCache(numBlocks, this.blockSize);
  }

  /** Forget the sequence (the KV cache is simply overwritten by the next prefill). */
  reset(): void {
    this.position = 0;
  }

  /**
   * Append tokens. Returns the logits f32 [V] of the last token, or with allLogits f32 [n * V] for
   * every appended token (row-major).
   */
  async prefill(tokens: readonly number[], opts: { allLogits?: boolean } = {}): Promise<Float32Array> {
    if (tokens.length === 0) throw new TokenmillError('invalid_argument', 'prefill: no tokens');
    if (this.position + tokens.length > this.maxSeqLen) {
      throw new TokenmillError(
        'context_length_exceeded',
        `sequence of ${this.position + tokens.length} tokens exceeds the driver's maxSeqLen ${this.maxSeqLen}`,
      );
    }
    const all = opts.allLogits === true;
    const V = this.model.config.vocabSize;
    const step = all ? this.logitsChunk : this.chunk;
    const out = all ? new Float32Array(tokens.length * V) : new Float32Array(V);
    for (let start = 0; start < tokens.length; start += step) {
      const piece = tokens.slice(start, start + step);
      const logits = await this.run(piece, all);
      if (all) out.set(logits, start * V);
      else if (start + step >= tokens.length) out.set(logits);
    }
    return out;
  }

  /** Append one token; returns its logits f32 [V]. */
  decode(token: number): Promise<Float32Array> {
    return this.prefill([token]);
  }

  /** One forward over `tokens` at the current position; reads back the requested rows. */
  private async run(tokens: readonly number[], allRows: boolean): Promise<Float32Array> {
    const b = this.b;
    const n = tokens.length;
    const p0 = this.position;
    const positions = Int32Array.from({ length: n }, (_, i) => p0 + i);
    const numLogits = allRows ? n : 1;
    const view = (t: Tensor, len: number): Tensor => b.view(t, [len]);
    const tokenIds = view(this.inputs.tokenIds, n);
    const pos = view(this.inputs.positions, n);
    const slots = view(this.inputs.slotMapping, n);
    const rows = view(this.inputs.logitsRows, numLogits);
    b.upload(tokenIds, Int32Array.from(tokens));
    b.upload(pos, positions);
    b.upload(slots, positions); // contiguous blocks 0..n-1: slot == position
    b.upload(rows, allRows ? Int32Array.from({ length: n }, (_, i) => i) : Int32Array.of(n - 1));
    b.upload(this.queryStartLoc, Int32Array.of(0, n));
    b.upload(this.seqLens, Int32Array.of(p0 + n));
    const attention: AttentionMetadata = {
      numSeqs: 1,
      maxQueryLen: n,
      maxSeqLen: p0 + n,
      queryStartLoc: this.queryStartLoc,
      seqLens: this.seqLens,
      blockTables: this.blockTables,
    };
    const step: StepInputs = { numTokens: n, tokenIds, positions: pos, slotMapping: slots, attention, logitsRows: rows, numLogits };
    const logits = this.model.forward(step, this.kvCache);
    this.position = p0 + n;
    return b.read(logits);
  }

  dispose(): void {
    freeKvCache(this.b, this.kvCache);
    for (const t of this.owned) this.b.free(t);
    this.owned.length = 0;
  }
}
