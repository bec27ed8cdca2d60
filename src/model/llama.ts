// Llama (2, 3, 3.1/3.2 with llama3 rope scaling, TinyLlama, SmolLM) and Mistral (optional sliding
// window): the plain pre-norm decoder with GQA, rope and SwiGLU; no biases, no q/k norm.
import { invariant } from '../util/invariant.js';
import type { ArchitectureImpl } from './architecture.js';
import type { ModelConfig } from './types.js';

export const LLAMA: ArchitectureImpl = {
  architectures: ['LlamaForCausalLM', 'MistralForCausalLM'],
  check(c: ModelConfig): void {
    invariant(!c.attentionBias && !c.qkNorm, `${c.architecture} has neither attention bias nor q/k norm`);
    invariant(c.architecture === 'MistralForCausalLM' || c.slidingWindow === 0, 'Llama has no sliding window');
  },
};
