// One pre-norm decoder layer of the Llama family (Llama, Mistral, Qwen2, Qwen3), written only
// against the Backend interface: norm -> q/k/v (+bias) -> (q/k norm) -> rope -> kv write ->
// paged attention -> o_proj -> residual add + norm -> gate_up -> silu*up -> down. Linear layers go
// through linear() (model/quantize.ts): matmul, or matmulQ8 for int8 weights.
import type { AttentionMetadata, Backend, KvLayer, Tensor } from '../runtime/backend.js';
import { linear } from './quantize.js';
import type { ModelConfig } from './types.js';
import type { LayerWeights } from './weights.js';
import type { StepViews } from './workspace.js';

/** Per-step inputs every layer reads (passed explicitly; nothing travels through globals). */
export interface LayerStep {
  readonly positions: Tensor; // i32 [T]
  readonly slotMapping: Tensor; // i32 [T]
  readonly meta: AttentionMetadata;
  readonly invFreq: Tensor; // f32 [Dh/2]
}

/**
 * Run layer `w`. On entry ws.normed holds this layer's normalized input (ws.hidden the residual
 * stream). On exit ws.proj holds the MLP output, NOT yet added to ws.hidden: the caller fuses that
 * add with the next layer's input norm (addRmsnorm), or with the final norm.
 */
export function runDecoderLayer(b: Backend, c: ModelConfig, w: LayerWeights, ws: StepViews, cache: KvLayer, step: LayerStep): void {
  const eps = c.rmsNormEps;
  linear(b, ws.q, ws.normed, w.qProj, w.qBias);
  linear(b, ws.k, ws.normed, w.kProj, w.kBias);
  linear(b, ws.v, ws.normed, w.vProj, w.vBias);
  if (w.qNorm !== null && w.kNorm !== null) {
    b.rmsnorm(ws.qHeads, ws.qHeads, w.qNorm, eps); // [T*H, Dh], per head
    b.rmsnorm(ws.kHeads, ws.kHeads, w.kNorm, eps);
  }
  b.rope(ws.q3, ws.k3, step.positions, step.invFreq);
  b.kvWrite(cache, ws.k3, ws.v3, step.slotMapping);
  b.attention(ws.attn3, ws.q3, cache, step.meta, 1 / Math.sqrt(c.headDim), c.slidingWindow);
  linear(b, ws.proj, ws.attn, w.oProj, null);
  b.addRmsnorm(ws.normed, ws.hidden, ws.proj, w.postAttnNorm, eps); // hidden += attn; normed = norm(hidden)
  linear(b, ws.gateUp, ws.normed, w.gateUp, null);
  b.siluMul(ws.act, ws.gateUp);
  linear(b, ws.proj, ws.act, w.down, null);
}
