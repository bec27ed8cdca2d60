// Weight-only int8 quantization as a transform outside the model (gpt-fast style): after the float
// weights are uploaded, each linear weight [N, K] is read back, quantized on the host per output
// channel (s[n] = max|w[n, :]| / 127, q = clamp(rne(w / s), -127, 127)) and replaced by (wq i8, s f32);
// the layers then call Backend.matmulQ8 through linear(). Embeddings, norms and biases stay float.
// (The CPU matmulQ8 rounds activations per row to int16 codes for exact integer dots: native/cpu/matmul_q8.cpp.)
// Mode q8_0 instead stores each linear weight whose K is a multiple of 32 as GGUF Q8_0 blocks (one f16
// scale per 32 weights) run by Backend.matmulGgml: activations quantized per 32 too, integer dots
// (VNNI where present), the llama.cpp Q8_0 arithmetic; a weight with another K stays float.
import type { Backend, Tensor } from '../runtime/backend.js';
import { TokenmillError } from '../util/errors.js';
import type { LayerWeights, ModelWeights } from './weights.js';
import { ggmlRowBytes, type GgmlQuantType } from '../runtime/ggml-format.js';
import { quantizeMatrix } from './convert/ggml-quantize.js';

export type QuantizeMode = 'int8' | 'q8_0';
export const QUANTIZE_MODES: readonly QuantizeMode[] = ['int8', 'q8_0'];

/** A linear weight stored as int8 values with one f32 scale per output row. */
export interface QuantizedLinear {
  readonly kind: 'q8';
  readonly wq: Tensor; // i8 [N, K]
  readonly scales: Tensor; // f32 [N]
}

/** A weight kept in its GGUF block type: raw blocks, i8 [N, rowBytes] (runtime/ggml-format.ts). */
export interface GgmlLinear {
  readonly kind: 'ggml';
  readonly type: GgmlQuantType;
  readonly blocks: Tensor;
  /** Logical shape [N, K]. */
  readonly shape: readonly [number, number];
}

/** What a model's linear layer holds: a float weight [N, K], its int8 form, or ggml blocks. */
export type LinearWeight = Tensor | QuantizedLinear | GgmlLinear;
/** The token embedding: a float table [V, D] or ggml blocks. */
export type EmbedWeight = Tensor | GgmlLinear;

export function isQuantized(w: LinearWeight): w is QuantizedLinear {
  return (w as Partial<QuantizedLinear>).kind === 'q8';
}

export function isGgml(w: LinearWeight): w is GgmlLinear {
  return (w as Partial<GgmlLinear>).kind === 'ggml';
}

/** out = x . w^T (+ bias) for any form of weight. */
export function linear(b: Backend, out: Tensor, x: Tensor, w: LinearWeight, bias: Tensor | null): void {
  if (isGgml(w)) {
    if (b.matmulGgml === undefined)
      throw new TokenmillError('invalid_argument', `backend '${b.name}' cannot compute on ${w.type} weights (no matmulGgml)`);
    b.matmulGgml(out, x, w.blocks, w.type, bias);
    return;
  }
  if (!isQuantized(w)) {
    b.matmul(out, x, w, bias);
    return;
  }
  if (b.matmulQ8 === undefined) throw new TokenmillError('invalid_argument', `backend '${b.name}' has no int8 matmul (matmulQ8)`);
  b.matmulQ8(out, x, w.wq, w.scales, bias);
}

/** out[t, :] = row ids[t] of the embedding, for either form. */
export function embed(b: Backend, out: Tensor, table: EmbedWeight, ids: Tensor): void {
  if (!isGgml(table)) {
    b.embedding(out, table, ids);
    return;
  }
  if (b.embeddingGgml === undefined)
    throw new TokenmillError('invalid_argument', `backend '${b.name}' cannot read ${table.type} embeddings (no embeddingGgml)`);
  b.embeddingGgml(out, table.blocks, table.type, ids);
}

/** The backend tensors behind a linear weight. */
export function linearTensors(w: LinearWeight): Tensor[] {
  return isGgml(w) ? [w.blocks] : isQuantized(w) ? [w.wq, w.scales] : [w];
}

/** Round half to even (the quantizer's rounding; Math.round rounds halves up). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Quantize rows of a [N, K] f32 matrix: scales[n] = fround(max|w[n, :]| / 127) and q = clamp(rne(w /
 * scales[n]), -127, 127) (an all-zero row gets scale 0 and zeros). |w - q * s| <= s / 2 per element.
 */
export function quantizeRowsInt8(values: Float32Array, N: number, K: number): { q: Int8Array; scales: Float32Array } {
  if (values.length !== N * K) throw new TokenmillError('invalid_argument', `quantize: ${values.length} values for [${N}, ${K}]`);
  const q = new Int8Array(N * K);
  const scales = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    const row = n * K;
    let maxAbs = 0;
    for (let k = 0; k < K; k++) {
      const a = Math.abs(values[row + k]!);
      if (!(a <= 3.4e38)) throw new TokenmillError('invalid_argument', `quantize: non-finite weight at row ${n}, column ${k}`);
      if (a > maxAbs) maxAbs = a;
    }
    const s = Math.fround(maxAbs / 127);
    scales[n] = s;
    if (s === 0) continue;
    for (let k = 0; k < K; k++) {
      const r = roundHalfEven(values[row + k]! / s);
      q[row + k] = r > 127 ? 127 : r < -127 ? -127 : r;
    }
  }
  return { q, scales };
}

/** Reads a float [N, K] weight, uploads its int8 form; the float tensor is left to the caller. */
export async function quantizeTensorInt8(b: Backend, w: Tensor): Promise<QuantizedLinear> {
  if (w.shape.length !== 2) throw new TokenmillError('invalid_argument', `quantize: weight of shape [${w.shape.join(', ')}] is not [N, K]`);
  const [N, K] = w.shape as [number, number];
  const { q, scales } = quantizeRowsInt8(await b.read(w), N, K);
  const wq = b.alloc([N, K], 'i8');
  let s: Tensor | null = null;
  try {
    s = b.alloc([N], 'f32');
    b.upload(wq, q);
    b.upload(s, scales);
  } catch (e) {
    b.free(wq);
    if (s !== null) b.free(s);
    throw e;
  }
  return { kind: 'q8', wq, scales: s };
}

/** Reads a float [N, K] weight (K % 32 == 0), uploads it as Q8_0 blocks; the float tensor is left to the caller. */
export async function quantizeTensorQ8_0(b: Backend, w: Tensor): Promise<GgmlLinear> {
  const [N, K] = w.shape as [number, number];
  const bytes = quantizeMatrix('Q8_0', await b.read(w), N, K);
  const blocks = b.alloc([N, ggmlRowBytes('Q8_0', K)], 'i8');
  try {
    b.upload(blocks, new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    b.free(blocks);
    throw e;
  }
  return { kind: 'ggml', type: 'Q8_0', blocks, shape: [N, K] };
}

/** One weight in `mode`, or null when q8_0 cannot hold it (K not a multiple of 32: it stays float). */
async function quantizeOne(b: Backend, w: Tensor, mode: QuantizeMode): Promise<QuantizedLinear | GgmlLinear | null> {
  if (w.shape.length !== 2) throw new TokenmillError('invalid_argument', `quantize: weight of shape [${w.shape.join(', ')}] is not [N, K]`);
  if (mode === 'int8') return quantizeTensorInt8(b, w);
  return w.shape[1]! % 32 === 0 ? quantizeTensorQ8_0(b, w) : null;
}

export interface QuantizeOptions {
  readonly mode: QuantizeMode;
  /**
   * Quantize lm_head too (default true: it is the largest matrix of small models, e.g. 60% of the
   * stories15M bytes, and per-row scales keep greedy agreement high; see docs/kernels.md). A tied
   * lm_head gets its own int8 copy; the embedding table stays float.
   */
  readonly lmHead?: boolean;
}

const LAYER_LINEARS = ['qProj', 'kProj', 'vProj', 'oProj', 'gateUp', 'down'] as const;

/**
 * Replace every linear weight of `w` by its int8 form, one tensor at a time (peak: the float model
 * plus one quantized tensor). Takes ownership of `w`: replaced float tensors are freed, and on
 * failure every tensor (float and quantized) is freed before the error is rethrown.
 */
export async function quantizeModelWeights(b: Backend, w: ModelWeights, opts: QuantizeOptions): Promise<ModelWeights> {
  if (!QUANTIZE_MODES.includes(opts.mode)) {
    throw new TokenmillError('invalid_argument', `unknown quantization '${String(opts.mode)}' (expected ${QUANTIZE_MODES.join(' | ')})`);
  }
  const missing =
    opts.mode === 'int8' ? (b.matmulQ8 === undefined ? 'int8 matmul' : null) : b.matmulGgml === undefined ? 'ggml matmul' : null;
  if (missing !== null) throw new TokenmillError('invalid_argument', `--quantize ${opts.mode}: backend '${b.name}' has no ${missing}`);
  const layers: LayerWeights[] = w.layers.map((l) => ({ ...l }));
  let lmHead: LinearWeight = w.lmHead;
  const made: (QuantizedLinear | GgmlLinear)[] = [];
  const freed = new Set<Tensor>();
  const tied = w.lmHead === w.embed;
  try {
    for (const l of layers) {
      const m = l as { -readonly [K in keyof LayerWeights]: LayerWeights[K] };
      for (const name of LAYER_LINEARS) {
        const f = m[name];
        if (isQuantized(f) || isGgml(f)) continue;
        const q = await quantizeOne(b, f, opts.mode);
        if (q === null) continue;
        made.push(q);
        m[name] = q;
        b.free(f);
        freed.add(f);
      }
    }
    const f = w.lmHead;
    const q = (opts.lmHead ?? true) && !isQuantized(f) && !isGgml(f) ? await quantizeOne(b, f, opts.mode) : null;
    if (q !== null) {
      made.push(q);
      lmHead = q;
      if (!tied) {
        b.free(f as Tensor);
        freed.add(f as Tensor);
      }
    }
  } catch (e) {
    for (const q of made) for (const t of linearTensors(q)) b.free(t);
    for (const t of floatTensors(w)) if (!freed.has(t)) b.free(t);
    throw e;
  }
  return { embed: w.embed, layers, finalNorm: w.finalNorm, lmHead };
}

/** Every distinct tensor of a ModelWeights (quantized weights as their two tensors). */
function floatTensors(w: ModelWeights): Set<Tensor> {
  const out = new Set<Tensor>([...linearTensors(w.embed), w.finalNorm, ...linearTensors(w.lmHead)]);
  for (const l of w.layers) {
    for (const v of Object.values(l) as (LinearWeight | null)[]) if (v !== null) for (const t of linearTensors(v)) out.add(t);
  }
  return out;
}
