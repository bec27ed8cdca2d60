// A seeded one-layer attention-only causal LM written only against the Backend contract
// (embedding -> q/k/v projections -> rope -> paged kvWrite + attention -> residual -> lm head).
// Its logits depend on every earlier token through the paged KV cache, so engine tests catch wrong
// slot mappings, block tables or recompute. Test helper for the engine until the real tiny models land.
import type { Backend, KvLayer, Tensor } from '../../src/runtime/backend.js';
import type { CausalLM, ModelConfig, StepInputs } from '../../src/model/types.js';

export interface ToyModelOptions {
  readonly seed?: number;
  readonly vocabSize?: number;
  readonly maxTokensPerStep?: number;
  readonly maxPositionEmbeddings?: number;
  readonly eosTokenIds?: readonly number[];
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function createToyModel(backend: Backend, o: ToyModelOptions = {}): CausalLM & { forwardCalls: number } {
  const V = o.vocabSize ?? 64;
  const D = 32;
  const H = 2;
  const Hkv = 1;
  const Dh = 16;
  const Tmax = o.maxTokensPerStep ?? 512;
  const rand = mulberry32(o.seed ?? 1234);
  const weight = (rows: number, cols: number, scale: number): Tensor => {
    const t = backend.alloc([rows, cols], 'f32');
    const h = new Float32Array(rows * cols);
    for (let i = 0; i < h.length; i++) h[i] = (rand() * 2 - 1) * scale;
    backend.upload(t, h);
    return t;
  };
  const embed = weight(V, D, 1);
  const wq = weight(H * Dh, D, 1 / Math.sqrt(D));
  const wk = weight(Hkv * Dh, D, 1 / Math.sqrt(D));
  const wv = weight(Hkv * Dh, D, 1 / Math.sqrt(D));
  const wo = weight(D, H * Dh, 1 / Math.sqrt(H * Dh));
  const lmHead = weight(V, D, 2);
  const invFreq = backend.alloc([Dh / 2], 'f32');
  const inv = new Float32Array(Dh / 2);
  for (let i = 0; i < Dh / 2; i++) inv[i] = 1 / 10000 ** ((2 * i) / Dh);
  backend.upload(invFreq, inv);
  // Workspace for the largest step: [Tmax, ...].
  const wsX = backend.alloc([Tmax, D], 'f32');
  const wsQ = backend.alloc([Tmax, H * Dh], 'f32');
  const wsK = backend.alloc([Tmax, Hkv * Dh], 'f32');
  const wsV = backend.alloc([Tmax, Hkv * Dh], 'f32');
  const wsA = backend.alloc([Tmax, H * Dh], 'f32');
  const wsO = backend.alloc([Tmax, D], 'f32');
  const wsRows = backend.alloc([Tmax, D], 'f32');
  const wsLogits = backend.alloc([Tmax, V], 'f32');
  const owned = [embed, wq, wk, wv, wo, lmHead, invFreq, wsX, wsQ, wsK, wsV, wsA, wsO, wsRows, wsLogits];

  const config: ModelConfig = {
    architecture: 'LlamaForCausalLM', vocabSize: V, hiddenSize: D, intermediateSize: 0, numLayers: 1, numHeads: H,
    numKvHeads: Hkv, headDim: Dh, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: null,
    maxPositionEmbeddings: o.maxPositionEmbeddings ?? 2048, tieWordEmbeddings: false, attentionBias: false, qkNorm: false,
    slidingWindow: 0, torchDType: 'f32', bosTokenId: null, eosTokenIds: o.eosTokenIds ?? [],
  };

  const model = {
    config,
    backend,
    maxTokensPerStep: Tmax,
    forwardCalls: 0,
    forward(step: StepInputs, kv: readonly KvLayer[]): Tensor {
      model.forwardCalls++;
      const T = step.numTokens;
      const x = backend.view(wsX, [T, D]);
      const q = backend.view(wsQ, [T, H * Dh]);
      const k = backend.view(wsK, [T, Hkv * Dh]);
      const v = backend.view(wsV, [T, Hkv * Dh]);
      const a = backend.view(wsA, [T, H, Dh]);
      const out = backend.view(wsO, [T, D]);
      backend.embedding(x, embed, step.tokenIds);
      backend.matmul(q, x, wq, null);
      backend.matmul(k, x, wk, null);
      backend.matmul(v, x, wv, null);
      const q3 = backend.view(q, [T, H, Dh]);
      const k3 = backend.view(k, [T, Hkv, Dh]);
      const v3 = backend.view(v, [T, Hkv, Dh]);
      backend.rope(q3, k3, step.positions, invFreq);
      backend.kvWrite(kv[0]!, k3, v3, step.slotMapping);
      backend.attention(a, q3, kv[0]!, step.attention, 1 / Math.sqrt(Dh), 0);
      backend.matmul(out, backend.view(a, [T, H * Dh]), wo, null);
      backend.add(out, out, x);
      const rows = backend.view(wsRows, [step.numLogits, D]);
      backend.gatherRows(rows, out, step.logitsRows);
      const logits = backend.view(wsLogits, [step.numLogits, V]);
      backend.matmul(logits, rows, lmHead, null);
      return logits;
    },
    allocKvCache(numBlocks: number, blockSize: number): KvLayer[] {
      return [{ k: backend.alloc([numBlocks, blockSize, Hkv, Dh], 'f32'), v: backend.alloc([numBlocks, blockSize, Hkv, Dh], 'f32') }];
    },
    kvBytesPerToken(): number {
      return 2 * Hkv * Dh * 4;
    },
    dispose(): void {
      for (const t of owned) backend.free(t);
    },
  };
  return model;
}
