// Normalized model description and the forward-pass contract every architecture implements.
// HF config names (num_key_value_heads, ...) appear only in model/config.ts; everything else uses
// ModelConfig. A CausalLM is written only against the Backend interface.

import type { AttentionMetadata, Backend, KvLayer, Tensor } from '../runtime/backend.js';
import type { FloatDType } from '../runtime/dtype.js';

export type Architecture = 'LlamaForCausalLM' | 'MistralForCausalLM' | 'Qwen2ForCausalLM' | 'Qwen3ForCausalLM';

export interface RopeScaling {
  /** 'llama3' (Llama 3.1/3.2 frequency-dependent scaling) or 'linear'; null for none. */
  readonly type: 'llama3' | 'linear';
  readonly factor: number;
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  readonly originalMaxPositionEmbeddings?: number;
}

export interface ModelConfig {
  readonly architecture: Architecture;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling | null;
  readonly maxPositionEmbeddings: number;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2). */
  readonly attentionBias: boolean;
  /** Per-head RMSNorm on q and k before rope (Qwen3). */
  readonly qkNorm: boolean;
  /** Sliding-window attention size (Mistral v0.1); 0 for none. */
  readonly slidingWindow: number;
  /** dtype the checkpoint stores (torch_dtype), informational. */
  readonly torchDType: FloatDType;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}

/** Everything one forward pass needs; built by the engine's batch builder (a StepBatch). */
export interface StepInputs {
  readonly numTokens: number;
  /** i32 [T] token ids, i32 [T] positions, i32 [T] KV slots. */
  readonly tokenIds: Tensor;
  readonly positions: Tensor;
  readonly slotMapping: Tensor;
  readonly attention: AttentionMetadata;
  /** Which token rows need logits: i32 [numLogits] (usually the last token of each sequence). */
  readonly logitsRows: Tensor;
  readonly numLogits: number;
  /**
   * Rows whose final hidden state (after the final norm, before lm_head) the caller wants too:
   * i32 [numHiddenRows] (embeddings: the last token, or every token for mean pooling). Absent or
   * 0: none. Read them with CausalLM.hiddenOutput after forward.
   */
  readonly hiddenRows?: Tensor | null;
  readonly numHiddenRows?: number;
}

export interface CausalLM {
  readonly config: ModelConfig;
  readonly backend: Backend;
  /** Largest numTokens one forward pass accepts (the workspace is sized for it). */
  readonly maxTokensPerStep: number;
  /** Largest numLogits one forward pass accepts (sizes the f32 logits buffer); maxTokensPerStep when absent. */
  readonly maxLogitsPerStep?: number;
  /**
   * Run one step and return logits f32 [numLogits, vocab]. The returned tensor is a view into the
   * model's workspace: valid until the next forward call.
   */
  forward(step: StepInputs, kvCache: readonly KvLayer[]): Tensor;
  /**
   * The final-normed hidden states of the rows the last forward's step.hiddenRows named:
   * [numHiddenRows, hiddenSize] in computeDType, a workspace view valid until the next forward.
   * Optional: a model without it serves no embeddings.
   */
  hiddenOutput?(numHiddenRows: number): Tensor;
  /**
   * Allocate a paged KV cache: one KvLayer per layer, each [numBlocks, blockSize, Hkv, Dh] of dtype
   * (default: the model's KV cache dtype, see DecoderModelOptions.kvCacheDType).
   */
  allocKvCache(numBlocks: number, blockSize: number, dtype?: FloatDType): KvLayer[];
  /** The dtype allocKvCache and kvBytesPerToken default to (DecoderModel: from kvCacheDType, 'auto' = computeDType). */
  readonly kvCacheDType?: FloatDType;
  /** Bytes one token of KV cache takes across all layers (in dtype, default the model's KV cache dtype). */
  kvBytesPerToken(dtype?: FloatDType): number;
  dispose(): void;
}
