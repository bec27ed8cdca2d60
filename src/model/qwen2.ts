// Qwen2 / Qwen2.5: the Llama decoder plus a bias on the q, k and v projections (not o_proj);
// sliding window only when config.json enables it for every layer.
import { invariant } from '../util/invariant.js';
import type { ArchitectureImpl } from './architecture.js';
import type { ModelConfig } from './types.js';

export const QWEN2: ArchitectureImpl = {
  architectures: ['Qwen2ForCausalLM'],
  check(c: ModelConfig): void {
    invariant(c.attentionBias && !c.qkNorm, 'Qwen2 has q/k/v bias and no q/k norm');
  },
};
