// Qwen3 (dense): the Llama decoder plus per-head RMSNorm on q and k before rope (q_norm, k_norm of
// size head_dim); head_dim is explicit and may differ from hidden_size / num_heads. No biases.
import { invariant } from '../util/invariant.js';
import type { ArchitectureImpl } from './architecture.js';
import type { ModelConfig } from './types.js';

export const QWEN3: ArchitectureImpl = {
  architectures: ['Qwen3ForCausalLM'],
  check(c: ModelConfig): void {
    invariant(c.qkNorm && !c.attentionBias, 'Qwen3 has q/k norm and no bias');
  },
};
