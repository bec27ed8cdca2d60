// DecoderModel: the CausalLM shared by every Llama-family architecture. Owns the uploaded weights,
// the rope table and the workspace (allocated once); forward() enqueues ops only, allocating nothing.
import type { Backend, KvLayer, Tensor } from '../runtime/backend.js';
import { DTYPE_BYTES, type FloatDType } from '../runtime/dtype.js';
import { TokenmillError } from '../util/errors.js';
import { runDecoderLayer, type LayerStep } from './decoder-layer.js';
import { embed, linear } from './quantize.js';
import { computeInvFreq } from './rope.js';
import type { CausalLM, ModelConfig, StepInputs } from './types.js';
import { weightTensors, type ModelWeights } from './weights.js';
import { Workspace } from './workspace.js';

export interface DecoderModelOptions {
  /** Largest numTokens per forward (default 512). */
  readonly maxTokensPerStep?: number;
  /** Largest numLogits per forward (default min(maxTokensPerStep, 256)); sizes the f32 logits buffer. */
  readonly maxLogitsPerStep?: number;
  /**
   * KV cache dtype: 'auto' (default) = the backend's computeDType; 'f16' / 'bf16' halve the cache
   * with f32 compute on backends that support a narrower cache (CPU; see KvLayer in backend.ts).
   */
  readonly kvCacheDType?: KvCacheDTypeOption;
}

export type KvCacheDTypeOption = 'auto' | FloatDType;
export const KV_CACHE_DTYPE_OPTIONS: readonly KvCacheDTypeOption[] = ['auto', 'f32', 'f16', 'bf16'];

/** The cache dtype an option gives on a backend; throws where the backend cannot hold it. */
export function resolveKvCacheDType(backend: Backend, opt: KvCacheDTypeOption = 'auto'): FloatDType {
  const compute = backend.computeDType as FloatDType;
  if (opt === 'auto' || opt === compute) return compute;
  if (!(KV_CACHE_DTYPE_OPTIONS as readonly string[]).includes(opt)) {
    throw new TokenmillError('invalid_argument', `kvCacheDType must be one of ${KV_CACHE_DTYPE_OPTIONS.join(', ')}, got ${String(opt)}`);
  }
  // A narrower cache needs f32 compute and a backend whose kvWrite/attention convert (cpu, reference).
  if (compute !== 'f32' || (backend.name !== 'cpu' && backend.name !== 'reference')) {
    throw new TokenmillError(
      'invalid_argument',
      `kvCacheDType ${opt} is not supported on the ${backend.name} backend with ${compute} compute (its KV cache is ${compute}; use auto)`,
    );
  }
  return opt;
}

export const DEFAULT_MAX_TOKENS_PER_STEP = 512;
export const DEFAULT_MAX_LOGITS_PER_STEP = 256;

export class DecoderModel implements CausalLM {
  readonly maxTokensPerStep: number;
  readonly maxLogitsPerStep: number;
  /** The KV cache dtype allocKvCache / kvBytesPerToken default to. */
  readonly kvCacheDType: FloatDType;
  private readonly invFreq: Tensor; // f32 [Dh/2]
  private readonly ws: Workspace;
  private disposed = false;

  constructor(
    readonly config: ModelConfig,
    readonly backend: Backend,
    private readonly weights: ModelWeights,
    opts: DecoderModelOptions = {},
  ) {
    this.maxTokensPerStep = positive(opts.maxTokensPerStep ?? DEFAULT_MAX_TOKENS_PER_STEP, 'maxTokensPerStep');
    this.maxLogitsPerStep = positive(
      opts.maxLogitsPerStep ?? Math.min(this.maxTokensPerStep, DEFAULT_MAX_LOGITS_PER_STEP),
      'maxLogitsPerStep',
    );
    this.kvCacheDType = resolveKvCacheDType(backend, opts.kvCacheDType);
    this.invFreq = backend.alloc([config.headDim / 2], 'f32');
    backend.upload(this.invFreq, computeInvFreq(config));
    try {
      this.ws = new Workspace(backend, config, this.maxTokensPerStep, this.maxLogitsPerStep);
    } catch (e) {
      backend.free(this.invFreq);
      throw e;
    }
  }

  forward(step: StepInputs, kvCache: readonly KvLayer[]): Tensor {
    const { backend: b, config: c, weights: w } = this;
    const T = step.numTokens;
    const S = step.numLogits;
    if (this.disposed) throw new TokenmillError('internal_error', 'forward() on a disposed model');
    if (!Number.isInteger(T) || T < 1 || T > this.maxTokensPerStep) {
      throw new TokenmillError('invalid_argument', `forward: numTokens ${T} outside 1..${this.maxTokensPerStep} (maxTokensPerStep)`);
    }
    if (!Number.isInteger(S) || S < 1 || S > this.maxLogitsPerStep) {
      throw new TokenmillError('invalid_argument', `forward: numLogits ${S} outside 1..${this.maxLogitsPerStep} (maxLogitsPerStep)`);
    }
    if (kvCache.length !== c.numLayers)
      throw new TokenmillError('invalid_argument', `forward: kvCache has ${kvCache.length} layers, model has ${c.numLayers}`);
    const ws = this.ws.step(T);
    const layerStep: LayerStep = { positions: step.positions, slotMapping: step.slotMapping, meta: step.attention, invFreq: this.invFreq };
    const eps = c.rmsNormEps;
    embed(b, ws.hidden, w.embed, step.tokenIds);
    for (let l = 0; l < c.numLayers; l++) {
      const lw = w.layers[l]!;
      if (l === 0) b.rmsnorm(ws.normed, ws.hidden, lw.inputNorm, eps);
      else b.addRmsnorm(ws.normed, ws.hidden, ws.proj, lw.inputNorm, eps); // hidden += previous MLP out
      runDecoderLayer(b, c, lw, ws, kvCache[l]!, layerStep);
    }
    // Only the requested rows reach the final norm and lm_head: gather residual and last MLP output,
    // then one fused add + norm on S rows instead of T.
    const lv = this.ws.logits(S);
    b.gatherRows(lv.lastHidden, ws.hidden, step.logitsRows);
    b.gatherRows(lv.lastProj, ws.proj, step.logitsRows);
    b.addRmsnorm(lv.lastNormed, lv.lastHidden, lv.lastProj, w.finalNorm, eps);
    linear(b, lv.logits, lv.lastNormed, w.lmHead, null);
    const numHidden = step.numHiddenRows ?? 0;
    if (numHidden > 0) {
      if (numHidden > T || step.hiddenRows == null)
        throw new TokenmillError(
          'invalid_argument',
          `forward: numHiddenRows ${numHidden} needs hiddenRows and at most numTokens (${T}) rows`,
        );
      // The residual stream and the last MLP output are free once the logits rows are gathered:
      // finish the residual add and the final norm over every row in place, then gather the
      // requested rows into the (now unused) residual buffer.
      b.addRmsnorm(ws.normed, ws.hidden, ws.proj, w.finalNorm, eps);
      b.gatherRows(this.ws.hiddenOut(numHidden), ws.normed, step.hiddenRows);
    }
    return lv.logits;
  }

  hiddenOutput(numHiddenRows: number): Tensor {
    if (!Number.isInteger(numHiddenRows) || numHiddenRows < 1 || numHiddenRows > this.maxTokensPerStep) {
      throw new TokenmillError('invalid_argument', `hiddenOutput: ${numHiddenRows} rows outside 1..${this.maxTokensPerStep}`);
    }
    return this.ws.hiddenOut(numHiddenRows);
  }

  allocKvCache(numBlocks: number, blockSize: number, dtype: FloatDType = this.kvCacheDType): KvLayer[] {
    const c = this.config;
    if (dtype !== this.kvCacheDType) resolveKvCacheDType(this.backend, dtype);
    positive(numBlocks, 'numBlocks');
    positive(blockSize, 'blockSize');
    const shape = [numBlocks, blockSize, c.numKvHeads, c.headDim];
    const layers: KvLayer[] = [];
    try {
      for (let l = 0; l < c.numLayers; l++) {
        const k = this.backend.alloc(shape, dtype, { resident: true });
        let v: Tensor;
        try {
          v = this.backend.alloc(shape, dtype, { resident: true });
        } catch (e) {
          this.backend.free(k);
          throw e;
        }
        layers.push({ k, v });
      }
    } catch (e) {
      freeKvCache(this.backend, layers);
      throw e;
    }
    return layers;
  }

  kvBytesPerToken(dtype: FloatDType = this.kvCacheDType): number {
    const c = this.config;
    return 2 * c.numLayers * c.numKvHeads * c.headDim * DTYPE_BYTES[dtype];
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ws.dispose();
    this.backend.free(this.invFreq);
    for (const t of weightTensors(this.weights)) this.backend.free(t);
  }
}

/** Free a cache from allocKvCache (the caller owns KV caches, not the model). */
export function freeKvCache(backend: Backend, cache: readonly KvLayer[]): void {
  for (const l of cache) {
    backend.free(l.k);
    backend.free(l.v);
  }
}

function positive(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new TokenmillError('invalid_argument', `${what} must be a positive integer, got ${n}`);
  return n;
}
