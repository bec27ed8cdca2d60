// SamplingParams: how one request picks its tokens and when it stops. Shared by the sampler, the
// generate loop, the scheduler and the server schemas. Pure data; validation lives with the sampler.
import type { SamplingKnobs } from '../runtime/backend.js';
import type { Constraint } from './constraint.js';

export type { Constraint, JsonSchema, StructuralTag, StructuralTagFormat } from './constraint.js';

export interface SamplingParams extends SamplingKnobs {
  /** token id -> bias added to its logit (OpenAI clamps to [-100, 100]). */
  readonly logitBias: ReadonlyMap<number, number>;
  /** Same seed, same tokens. null: a fresh random seed per request. */
  readonly seed: number | null;
  readonly maxTokens: number;
  /** Stop strings: generation ends at the first occurrence; the string itself is cut off unless includeStopStrInOutput. */
  readonly stop: readonly string[];
  /** Keep the matched stop string at the end of the text (vLLM include_stop_str_in_output). */
  readonly includeStopStrInOutput: boolean;
  /** Extra stop token ids (besides EOS unless ignoreEos). */
  readonly stopTokenIds: readonly number[];
  readonly ignoreEos: boolean;
  /** Number of top logprobs to return per token (0 = none; null = logprobs off). */
  readonly logprobs: number | null;
  /** Number of completions sharing this prompt. */
  readonly n: number;
  /**
   * Grammar the output must match, enforced token by token (engine/grammar/); null: free text.
   * Each of the n choices gets its own matcher. The engine needs a tokenizer for it.
   */
  readonly constraint: Constraint | null;
  /** Special tokens whose text the detokenizer keeps (tool-call markers such as [TOOL_CALLS]). */
  readonly keepSpecialTokenIds: readonly number[];
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  logitBias: new Map(),
  seed: null,
  maxTokens: 256,
  stop: [],
  includeStopStrInOutput: false,
  stopTokenIds: [],
  ignoreEos: false,
  logprobs: null,
  n: 1,
  constraint: null,
  keepSpecialTokenIds: [],
};

export function samplingParams(overrides: Partial<SamplingParams> = {}): SamplingParams {
  return { ...DEFAULT_SAMPLING, ...overrides };
}

export type FinishReason = 'stop' | 'length' | 'abort' | 'error';
