// An independent, naive f64 forward pass straight from HF tensors (no Backend, no paging): the
// transformers math for Llama/Mistral/Qwen2/Qwen3 written out in loops. Tests compare the model
// code (on the reference backend) against it, so a wiring bug cannot hide behind a shared path.
import { readSafetensorsFile, type HostTensor } from '../../src/model/safetensors.js';
import { halfToF32 } from '../../src/runtime/dtype.js';
import { computeInvFreq } from '../../src/model/rope.js';
import type { ModelConfig } from '../../src/model/types.js';

function toF64(t: HostTensor): Float64Array {
  if (t.dtype === 'F32') return Float64Array.from(t.data as Float32Array);
  return Float64Array.from(halfToF32(t.data as Uint16Array, t.dtype === 'F16' ? 'f16' : 'bf16'));
}

/** y[N] = W[N, K] x[K] (+ b). */
function matvec(w: Float64Array, x: Float64Array, n: number, k: number, b?: Float64Array): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b === undefined ? 0 : b[i]!;
    for (let j = 0; j < k; j++) s += w[i * k + j]! * x[j]!;
    y[i] = s;
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number, off = 0, len = x.length): void {
  let ss = 0;
  for (let i = 0; i < len; i++) ss += x[off + i]! ** 2;
  const r = 1 / Math.sqrt(ss / len + eps);
  for (let i = 0; i < len; i++) x[off + i] = x[off + i]! * r * w[i]!;
}

function rope(x: Float64Array, heads: number, dh: number, pos: number, invFreq: Float32Array): void {
  const half = dh / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const ang = pos * invFreq[i]!;
      const a = x[h * dh + i]!;
      const b = x[h * dh + i + half]!;
      x[h * dh + i] = a * Math.cos(ang) - b * Math.sin(ang);
      x[h * dh + i + half] = b * Math.cos(ang) + a * Math.sin(ang);
    }
  }
}

/** Logits [T][V] for a whole token sequence, computed causally from scratch. */
export function denseForward(modelFile: string, c: ModelConfig, tokens: readonly number[]): Float64Array[] {
  const W = weightReader(modelFile);
  const lmHead = c.tieWordEmbeddings ? W('model.embed_tokens.weight') : W('lm_head.weight');
  return denseFinalHidden(modelFile, c, tokens, W).map((h) => matvec(lmHead, h, c.vocabSize, c.hiddenSize));
}

function weightReader(modelFile: string): (name: string) => Float64Array {
  const { tensors } = readSafetensorsFile(modelFile);
  const cache = new Map<string, Float64Array>();
  return (name: string): Float64Array => {
    let w = cache.get(name);
    if (w === undefined) cache.set(name, (w = toF64(tensors.get(name)!)));
    return w;
  };
}

/** Final hidden states [T][D] (after the final norm, before lm_head): what embeddings pool. */
export function denseFinalHidden(
  modelFile: string,
  c: ModelConfig,
  tokens: readonly number[],
  W = weightReader(modelFile),
): Float64Array[] {
  const D = c.hiddenSize,
    H = c.numHeads,
    Hkv = c.numKvHeads,
    Dh = c.headDim,
    I = c.intermediateSize;
  const invFreq = computeInvFreq(c);
  const T = tokens.length;
  const embed = W('model.embed_tokens.weight');
  const xs = tokens.map((t) => embed.slice(t * D, (t + 1) * D));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const g = (n: string): Float64Array => W(p + n);
    const bias = (n: string): Float64Array | undefined => (c.attentionBias ? g(n) : undefined);
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    const qs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = xs[t]!.slice();
      rmsnorm(h, g('input_layernorm.weight'), c.rmsNormEps);
      const q = matvec(g('self_attn.q_proj.weight'), h, H * Dh, D, bias('self_attn.q_proj.bias'));
      const k = matvec(g('self_attn.k_proj.weight'), h, Hkv * Dh, D, bias('self_attn.k_proj.bias'));
      const v = matvec(g('self_attn.v_proj.weight'), h, Hkv * Dh, D, bias('self_attn.v_proj.bias'));
      if (c.qkNorm) {
        for (let hh = 0; hh < H; hh++) rmsnorm(q, g('self_attn.q_norm.weight'), c.rmsNormEps, hh * Dh, Dh);
        for (let hh = 0; hh < Hkv; hh++) rmsnorm(k, g('self_attn.k_norm.weight'), c.rmsNormEps, hh * Dh, Dh);
      }
      rope(q, H, Dh, t, invFreq);
      rope(k, Hkv, Dh, t, invFreq);
      qs.push(q);
      ks.push(k);
      vs.push(v);
    }
    for (let t = 0; t < T; t++) {
      const attn = new Float64Array(H * Dh);
      const lo = c.slidingWindow > 0 ? Math.max(0, t - c.slidingWindow + 1) : 0;
      for (let hh = 0; hh < H; hh++) {
        const kvh = Math.floor(hh / (H / Hkv));
        const scores: number[] = [];
        for (let s = lo; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < Dh; i++) dot += qs[t]![hh * Dh + i]! * ks[s]![kvh * Dh + i]!;
          scores.push(dot / Math.sqrt(Dh));
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = lo; s <= t; s++) {
          const pr = e[s - lo]! / z;
          for (let i = 0; i < Dh; i++) attn[hh * Dh + i] = attn[hh * Dh + i]! + pr * vs[s]![kvh * Dh + i]!;
        }
      }
      const o = matvec(g('self_attn.o_proj.weight'), attn, D, H * Dh);
      const x = xs[t]!;
      for (let i = 0; i < D; i++) x[i] = x[i]! + o[i]!;
      const h = x.slice();
      rmsnorm(h, g('post_attention_layernorm.weight'), c.rmsNormEps);
      const gate = matvec(g('mlp.gate_proj.weight'), h, I, D);
      const up = matvec(g('mlp.up_proj.weight'), h, I, D);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!);
      const down = matvec(g('mlp.down_proj.weight'), act, D, I);
      for (let i = 0; i < D; i++) x[i] = x[i]! + down[i]!;
    }
  }
  const norm = W('model.norm.weight');
  return xs.map((x) => {
    const h = x.slice();
    rmsnorm(h, norm, c.rmsNormEps);
    return h;
  });
}
