// Embedding requests: how a sequence's final hidden states (after the final norm) become one
// vector. 'last' keeps the last prompt token's row (Qwen3-Embedding, gte-Qwen2, E5-Mistral);
// 'mean' averages every prompt token's row, accumulated over prefill chunks in f64. The vector is
// returned raw: normalising and Matryoshka truncation are the caller's (server/embeddings.ts).
import type { PoolingType } from '../model/pooling-config.js';
import { invariant } from '../util/invariant.js';

export type { PoolingType };
export const POOLING_TYPES: readonly PoolingType[] = ['last', 'mean'];

export class EmbeddingPooler {
  private readonly sum: Float64Array;
  private numRows = 0;

  constructor(
    readonly type: PoolingType,
    readonly hiddenSize: number,
  ) {
    this.sum = new Float64Array(hiddenSize);
  }

  /**
   * Fold in rows [firstRow, firstRow + numRows) of host, a [*, hiddenSize] f32 matrix. restart
   * drops what was folded before (the sequence is recomputed from token 0 after a preemption).
   */
  add(host: Float32Array, firstRow: number, numRows: number, restart: boolean): void {
    const D = this.hiddenSize;
    invariant((firstRow + numRows) * D <= host.length, () => `pooling rows ${firstRow}+${numRows} outside ${host.length / D}`);
    if (restart || this.type === 'last') {
      this.sum.fill(0);
      this.numRows = 0;
    }
    const from = this.type === 'last' ? firstRow + numRows - 1 : firstRow;
    for (let r = from; r < firstRow + numRows; r++) {
      const off = r * D;
      for (let i = 0; i < D; i++) this.sum[i] = this.sum[i]! + host[off + i]!;
      this.numRows++;
    }
  }

  /** The pooled vector [hiddenSize] (f32); throws if no row was folded in. */
  result(): Float32Array {
    invariant(this.numRows > 0, 'pooled embedding with no rows');
    const out = new Float32Array(this.hiddenSize);
    for (let i = 0; i < out.length; i++) out[i] = this.sum[i]! / this.numRows;
    return out;
  }
}

/** How many of a scheduled chunk's rows a pooling type needs: all (mean) or the last when it ends the prompt. */
export function pooledRowsOf(type: PoolingType, chunkEnd: number, numPromptTokens: number, numTokens: number): number {
  if (type === 'mean') return numTokens;
  return chunkEnd >= numPromptTokens ? 1 : 0;
}
