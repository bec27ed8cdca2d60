// HF weight names, their expected shapes from ModelConfig, and the upload of a checkpoint into
// Backend tensors one tensor at a time (gate and up fused into one [2I, D] weight at load). Never
// keeps a host copy: each tensor is read in bounded pieces (Checkpoint.readPieces) and each piece
// uploaded at its offset, so peak host memory is the weights plus a few MiB, whatever the tensor.
import { basename } from 'node:path';
import type { Backend, Tensor } from '../runtime/backend.js';
import { halfToF32, isFloatDType, type DType, type FloatDType } from '../runtime/dtype.js';
import { TokenmillError } from '../util/errors.js';
import { invariant } from '../util/invariant.js';
import { linearTensors, type EmbedWeight, type LinearWeight } from './quantize.js';
import type { Checkpoint } from './safetensors.js';
import type { ModelConfig } from './types.js';

export interface LayerWeights {
  readonly inputNorm: Tensor; // [D]
  readonly qProj: LinearWeight; // [H*Dh, D]
  readonly kProj: LinearWeight; // [Hkv*Dh, D]
  readonly vProj: LinearWeight; // [Hkv*Dh, D]
  readonly qBias: Tensor | null; // [H*Dh] (Qwen2)
  readonly kBias: Tensor | null; // [Hkv*Dh]
  readonly vBias: Tensor | null; // [Hkv*Dh]
  readonly qNorm: Tensor | null; // [Dh] (Qwen3)
  readonly kNorm: Tensor | null; // [Dh]
  readonly oProj: LinearWeight; // [D, H*Dh]
  readonly postAttnNorm: Tensor; // [D]
  readonly gateUp: LinearWeight; // [2I, D]: gate rows then up rows
  readonly down: LinearWeight; // [D, I]
}

export interface ModelWeights {
  readonly embed: EmbedWeight; // [V, D]
  readonly layers: readonly LayerWeights[];
  readonly finalNorm: Tensor; // [D]
  /** [V, D]; the same tensor as embed when tied (until quantized: model/quantize.ts). */
  readonly lmHead: LinearWeight;
}

export interface LoadWeightsOptions {
  /**
   * dtype of the large matrices (embedding, projections, lm_head). 'stored' keeps the checkpoint's
   * dtype; default 'auto' keeps it too, except that f32 weights become computeDType on a
   * half-precision backend (CUDA bf16). Norms and biases always use backend.computeDType.
   */
  readonly weightDType?: FloatDType | 'stored' | 'auto';
  /** Called after each checkpoint tensor is uploaded (for progress bars). */
  readonly onProgress?: (loadedBytes: number, totalBytes: number) => void;
}

const P = 'model.layers.';

/** Every tensor name this config needs, with its expected shape (HF layout, [out, in]). */
export function expectedWeights(c: ModelConfig): Map<string, readonly number[]> {
  const D = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const m = new Map<string, readonly number[]>();
  m.set('model.embed_tokens.weight', [c.vocabSize, D]);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `${P}${l}.`;
    m.set(`${p}input_layernorm.weight`, [D]);
    m.set(`${p}self_attn.q_proj.weight`, [q, D]);
    m.set(`${p}self_attn.k_proj.weight`, [kv, D]);
    m.set(`${p}self_attn.v_proj.weight`, [kv, D]);
    if (c.attentionBias) {
      m.set(`${p}self_attn.q_proj.bias`, [q]);
      m.set(`${p}self_attn.k_proj.bias`, [kv]);
      m.set(`${p}self_attn.v_proj.bias`, [kv]);
    }
    if (c.qkNorm) {
      m.set(`${p}self_attn.q_norm.weight`, [c.headDim]);
      m.set(`${p}self_attn.k_norm.weight`, [c.headDim]);
    }
    m.set(`${p}self_attn.o_proj.weight`, [D, q]);
    m.set(`${p}post_attention_layernorm.weight`, [D]);
    m.set(`${p}mlp.gate_proj.weight`, [c.intermediateSize, D]);
    m.set(`${p}mlp.up_proj.weight`, [c.intermediateSize, D]);
    m.set(`${p}mlp.down_proj.weight`, [D, c.intermediateSize]);
  }
  m.set('model.norm.weight', [D]);
  if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, D]);
  return m;
}

const ST_TO_DTYPE: Record<string, FloatDType | undefined> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** Check every needed tensor exists with the right shape and a float dtype, before uploading any. */
export function checkCheckpoint(ckpt: Checkpoint, c: ModelConfig): void {
  for (const [name, shape] of expectedWeights(c)) {
    const info = ckpt.info(name);
    if (info === undefined) {
      // Name the files searched: a renamed tensor is damage in one of them, a wrong config.json asks for the wrong names.
      const files = ckpt.files.map((f) => basename(f.path));
      const shown = files.length <= 3 ? files.join(', ') : `${files.slice(0, 3).join(', ')} and ${files.length - 3} more`;
      throw new TokenmillError(
        'tensor_missing',
        `${ckpt.dir}: checkpoint (${shown}) lacks '${name}' (needed by ${c.architecture} as config.json describes it)`,
        {
          details: { dir: ckpt.dir, tensor: name, files },
        },
      );
    }
    const file = ckpt.fileOf(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new TokenmillError(
        'tensor_shape_mismatch',
        `${file}: tensor '${name}' has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}]`,
        {
          details: { file, tensor: name, shape: info.shape, expected: shape },
        },
      );
    }
    if (ST_TO_DTYPE[info.dtype] === undefined) {
      throw new TokenmillError(
        'safetensors_bad_dtype',
        `${file}: weight '${name}' has dtype ${info.dtype}; weights must be F32, F16 or BF16`,
        { details: { file, tensor: name } },
      );
    }
  }
}

/** The dtype a matrix stored as `stored` gets on a backend computing in `computeDType`. */
export function resolveWeightDType(
  stored: FloatDType,
  computeDType: DType,
  option: LoadWeightsOptions['weightDType'] = 'auto',
): FloatDType {
  if (option === 'stored') return stored;
  if (option !== 'auto') return option;
  return stored === 'f32' && (computeDType === 'f16' || computeDType === 'bf16') ? computeDType : stored;
}

/**
 * Uploads checkpoint tensors into backend tensors piece by piece (element-aligned pieces at their
 * offsets), converting f16/bf16 pieces to f32 through one reusable scratch of one piece.
 */
class Uploader {
  private scratch = new Float32Array(0);
  constructor(
    private readonly backend: Backend,
    private readonly ckpt: Checkpoint,
  ) {}

  upload(dst: Tensor, name: string, dstOffset = 0): void {
    const hostDType = ST_TO_DTYPE[this.ckpt.info(name)!.dtype];
    this.ckpt.readPieces(name, (data, elemOffset) => {
      if (hostDType === 'f32' || hostDType === dst.dtype) {
        this.backend.upload(dst, data as Float32Array | Uint16Array, dstOffset + elemOffset);
        return;
      }
      const bits = data as Uint16Array;
      if (this.scratch.length < bits.length) this.scratch = new Float32Array(bits.length);
      const f32 = halfToF32(bits, hostDType as 'f16' | 'bf16', this.scratch.subarray(0, bits.length));
      this.backend.upload(dst, f32, dstOffset + elemOffset);
    });
  }
}

/** Upload all weights. Call checkCheckpoint first. On failure, frees what it allocated. */
export function uploadWeights(ckpt: Checkpoint, c: ModelConfig, backend: Backend, opts: LoadWeightsOptions = {}): ModelWeights {
  const up = new Uploader(backend, ckpt);
  const allocated: Tensor[] = [];
  const matDType = (name: string): FloatDType =>
    resolveWeightDType(ST_TO_DTYPE[ckpt.info(name)!.dtype]!, backend.computeDType, opts.weightDType);
  let totalBytes = 0;
  for (const name of expectedWeights(c).keys()) totalBytes += ckpt.info(name)!.byteLength;
  let loadedBytes = 0;
  const read = (dst: Tensor, name: string, dstOffset = 0): void => {
    up.upload(dst, name, dstOffset);
    loadedBytes += ckpt.info(name)!.byteLength;
  };
  const progress = (): void => opts.onProgress?.(loadedBytes, totalBytes);
  const load = (name: string, dtype: FloatDType): Tensor => {
    const t = backend.alloc(ckpt.info(name)!.shape, dtype);
    allocated.push(t);
    read(t, name);
    progress();
    return t;
  };
  const mat = (name: string): Tensor => load(name, matDType(name));
  const computeDType = backend.computeDType;
  invariant(isFloatDType(computeDType), `computeDType ${computeDType} is not a float type`);
  const vec = (name: string): Tensor => load(name, computeDType);
  const opt = (name: string, on: boolean): Tensor | null => (on ? vec(name) : null);
  try {
    const embed = mat('model.embed_tokens.weight');
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      const p = `${P}${l}.`;
      const gateName = `${p}mlp.gate_proj.weight`;
      const I = c.intermediateSize;
      const gateUp = backend.alloc([2 * I, c.hiddenSize], matDType(gateName));
      allocated.push(gateUp);
      read(gateUp, gateName, 0);
      read(gateUp, `${p}mlp.up_proj.weight`, I * c.hiddenSize);
      progress();
      layers.push({
        inputNorm: vec(`${p}input_layernorm.weight`),
        qProj: mat(`${p}self_attn.q_proj.weight`),
        kProj: mat(`${p}self_attn.k_proj.weight`),
        vProj: mat(`${p}self_attn.v_proj.weight`),
        qBias: opt(`${p}self_attn.q_proj.bias`, c.attentionBias),
        kBias: opt(`${p}self_attn.k_proj.bias`, c.attentionBias),
        vBias: opt(`${p}self_attn.v_proj.bias`, c.attentionBias),
        qNorm: opt(`${p}self_attn.q_norm.weight`, c.qkNorm),
        kNorm: opt(`${p}self_attn.k_norm.weight`, c.qkNorm),
        oProj: mat(`${p}self_attn.o_proj.weight`),
        postAttnNorm: vec(`${p}post_attention_layernorm.weight`),
        gateUp,
        down: mat(`${p}mlp.down_proj.weight`),
      });
    }
    const finalNorm = vec('model.norm.weight');
    const lmHead = c.tieWordEmbeddings ? embed : mat('lm_head.weight');
    return { embed, layers, finalNorm, lmHead };
  } catch (e) {
    for (const t of allocated) backend.free(t);
    throw e;
  }
}

/** Every distinct tensor in a ModelWeights (lmHead counted once when tied; int8 weights as wq + scales). */
export function weightTensors(w: ModelWeights): Tensor[] {
  const out = new Set<Tensor>([...linearTensors(w.embed), w.finalNorm, ...linearTensors(w.lmHead)]);
  for (const l of w.layers) {
    for (const t of Object.values(l) as (LinearWeight | null)[]) if (t !== null) for (const x of linearTensors(t)) out.add(x);
  }
  return [...out];
}
