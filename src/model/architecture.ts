// The per-architecture hook: what each supported architecture file (llama.ts, qwen2.ts, qwen3.ts)
// provides, and the registry the loader consults. Architectures differ only in config checks and
// extra weights (bias, q/k norm); the forward pass is the shared DecoderModel.
import type { Backend } from '../runtime/backend.js';
import { invariant } from '../util/invariant.js';
import { DecoderModel, type DecoderModelOptions } from './decoder-model.js';
import { LLAMA } from './llama.js';
import { QWEN2 } from './qwen2.js';
import { QWEN3 } from './qwen3.js';
import type { Architecture, CausalLM, ModelConfig } from './types.js';
import type { ModelWeights } from './weights.js';

export interface ArchitectureImpl {
  readonly architectures: readonly Architecture[];
  /** Invariants of a parsed config for this family (config.ts already validated the values). */
  check(config: ModelConfig): void;
}

const IMPLS: readonly ArchitectureImpl[] = [LLAMA, QWEN2, QWEN3];

export function architectureImpl(arch: Architecture): ArchitectureImpl {
  const impl = IMPLS.find((i) => i.architectures.includes(arch));
  invariant(impl !== undefined, `no implementation registered for ${arch}`);
  return impl;
}

/** Build the CausalLM for uploaded weights. */
export function createCausalLM(config: ModelConfig, backend: Backend, weights: ModelWeights, opts: DecoderModelOptions = {}): CausalLM {
  architectureImpl(config.architecture).check(config);
  return new DecoderModel(config, backend, weights, opts);
}
