// The forward-pass workspace: every activation buffer, allocated once for maxTokensPerStep, and
// per-token-count views over it (cached, so a step creates no tensors). Never allocates in forward.
import type { Backend, Tensor } from '../runtime/backend.js';
import type { ModelConfig } from './types.js';

/** Views of the workspace for one step of T tokens and S logits rows. */
export interface StepViews {
  readonly hidden: Tensor; // [T, D] residual stream
  readonly normed: Tensor; // [T, D] normalized input of attention / MLP
  readonly q: Tensor; // [T, H*Dh]
  readonly k: Tensor; // [T, Hkv*Dh]
  readonly v: Tensor; // [T, Hkv*Dh]
  readonly q3: Tensor; // [T, H, Dh] (same storage as q)
  readonly k3: Tensor; // [T, Hkv, Dh]
  readonly v3: Tensor; // [T, Hkv, Dh]
  readonly qHeads: Tensor; // [T*H, Dh] for per-head q norm
  readonly kHeads: Tensor; // [T*Hkv, Dh]
  readonly attn: Tensor; // [T, H*Dh]
  readonly attn3: Tensor; // [T, H, Dh]
  readonly proj: Tensor; // [T, D] output of o_proj / down_proj
  readonly gateUp: Tensor; // [T, 2I]
  readonly act: Tensor; // [T, I]
}

export interface LogitsViews {
  readonly lastHidden: Tensor; // [S, D] gathered residual rows
  readonly lastProj: Tensor; // [S, D] gathered last-MLP rows
  readonly lastNormed: Tensor; // [S, D]
  readonly logits: Tensor; // f32 [S, V]
}

export class Workspace {
  private readonly buffers: Tensor[] = [];
  private readonly stepViews = new Map<number, StepViews>();
  private readonly logitsViews = new Map<number, LogitsViews>();
  private readonly hiddenViews = new Map<number, Tensor>();
  private readonly big: Record<'hidden' | 'normed' | 'q' | 'k' | 'v' | 'attn' | 'proj' | 'gateUp' | 'act', Tensor>;
  private readonly small: Record<'lastHidden' | 'lastProj' | 'lastNormed' | 'logits', Tensor>;

  constructor(
    private readonly backend: Backend,
    private readonly c: ModelConfig,
    readonly maxTokens: number,
    readonly maxLogits: number,
  ) {
    const dt = backend.computeDType;
    const T = maxTokens;
    const S = maxLogits;
    const D = c.hiddenSize;
    const a = (shape: number[], dtype = dt): Tensor => {
      const t = backend.alloc(shape, dtype);
      this.buffers.push(t);
      return t;
    };
    try {
      this.big = {
        hidden: a([T, D]),
        normed: a([T, D]),
        q: a([T, c.numHeads * c.headDim]),
        k: a([T, c.numKvHeads * c.headDim]),
        v: a([T, c.numKvHeads * c.headDim]),
        attn: a([T, c.numHeads * c.headDim]),
        proj: a([T, D]),
        gateUp: a([T, 2 * c.intermediateSize]),
        act: a([T, c.intermediateSize]),
      };
      this.small = { lastHidden: a([S, D]), lastProj: a([S, D]), lastNormed: a([S, D]), logits: a([S, c.vocabSize], 'f32') };
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Views for a step of `numTokens` tokens (created once per distinct count, then reused). */
  step(numTokens: number): StepViews {
    const hit = this.stepViews.get(numTokens);
    if (hit !== undefined) return hit;
    const { backend: b, c, big } = this;
    const T = numTokens;
    const H = c.numHeads;
    const Hkv = c.numKvHeads;
    const Dh = c.headDim;
    const q = b.view(big.q, [T, H * Dh]);
    const k = b.view(big.k, [T, Hkv * Dh]);
    const v = b.view(big.v, [T, Hkv * Dh]);
    const attn = b.view(big.attn, [T, H * Dh]);
    const views: StepViews = {
      hidden: b.view(big.hidden, [T, c.hiddenSize]),
      normed: b.view(big.normed, [T, c.hiddenSize]),
      q,
      k,
      v,
      q3: b.view(big.q, [T, H, Dh]),
      k3: b.view(big.k, [T, Hkv, Dh]),
      v3: b.view(big.v, [T, Hkv, Dh]),
      qHeads: b.view(big.q, [T * H, Dh]),
      kHeads: b.view(big.k, [T * Hkv, Dh]),
      attn,
      attn3: b.view(big.attn, [T, H, Dh]),
      proj: b.view(big.proj, [T, c.hiddenSize]),
      gateUp: b.view(big.gateUp, [T, 2 * c.intermediateSize]),
      act: b.view(big.act, [T, c.intermediateSize]),
    };
    this.stepViews.set(numTokens, views);
    return views;
  }

  /**
   * [R, D] view over the residual buffer: where forward gathers the final-normed hidden rows the
   * step asked for (the residual is dead by then; the next forward overwrites it first thing).
   */
  hiddenOut(numRows: number): Tensor {
    let v = this.hiddenViews.get(numRows);
    if (v === undefined) {
      v = this.backend.view(this.big.hidden, [numRows, this.c.hiddenSize]);
      this.hiddenViews.set(numRows, v);
    }
    return v;
  }

  /** Views for `numLogits` gathered rows. */
  logits(numLogits: number): LogitsViews {
    const hit = this.logitsViews.get(numLogits);
    if (hit !== undefined) return hit;
    const { backend: b, c, small } = this;
    const S = numLogits;
    const views: LogitsViews = {
      lastHidden: b.view(small.lastHidden, [S, c.hiddenSize]),
      lastProj: b.view(small.lastProj, [S, c.hiddenSize]),
      lastNormed: b.view(small.lastNormed, [S, c.hiddenSize]),
      logits: b.view(small.logits, [S, c.vocabSize]),
    };
    this.logitsViews.set(numLogits, views);
    return views;
  }

  dispose(): void {
    for (const t of this.buffers) this.backend.free(t);
    this.buffers.length = 0;
    this.stepViews.clear();
    this.logitsViews.clear();
    this.hiddenViews.clear();
  }
}
