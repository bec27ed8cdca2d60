// The golden run: greedy generation from the reference prompt through generate(), i.e. the serving
// Engine with ENGINE_DEFAULTS (scheduler, KV manager, model runner, device argmax, detokenizer). The
// first `numLogitsRows` steps take their token from a host sampler that also records the logits row
// (the engine reads rows back for a sampler that is not argmaxOnly); later steps run exactly as
// `serve` does. Shared by the CPU/reference golden (test/golden) and the CUDA one (test/gpu).
import { generate } from '../../src/engine/generate.js';
import type { SamplerFactory } from '../../src/engine/engine-config.js';
import { createSequenceSampler, type SequenceSampler } from '../../src/engine/sampler.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import type { TokenBytesSource } from '../../src/engine/detokenizer.js';
import type { CausalLM } from '../../src/model/types.js';

export interface GoldenRun {
  readonly ids: number[];
  /** Streamed text (the events' text joined): what a client of `serve` receives. */
  readonly text: string;
  /** f32 [V] logits of the first numLogitsRows sampled positions. */
  readonly logits: Float32Array[];
  readonly finishReason: string | null;
}

/** Records the first `numRows` logits rows seen by each sampler; argmaxOnly once they are taken. */
export function recordingSamplers(numRows: number, rows: Float32Array[]): SamplerFactory {
  return (params, prompt, opts) => {
    const inner = createSequenceSampler(params, prompt, opts);
    const V = opts.vocabSize!;
    const s: SequenceSampler = {
      params: inner.params,
      seed: inner.seed,
      get argmaxOnly() {
        return inner.argmaxOnly && rows.length >= numRows;
      },
      get numGeneratedTokens() {
        return inner.numGeneratedTokens;
      },
      sample(logits, row = 0) {
        if (rows.length < numRows) rows.push(logits.slice(row * V, (row + 1) * V));
        return inner.sample(logits, row);
      },
      recordToken: (id) => inner.recordToken(id),
      grammar: inner.grammar,
      dispose: () => inner.dispose(),
    };
    return s;
  };
}

export async function goldenRun(
  model: CausalLM,
  tokenizer: TokenBytesSource | null,
  prompt: readonly number[],
  maxTokens: number,
  numLogitsRows: number,
): Promise<GoldenRun> {
  const logits: Float32Array[] = [];
  const ids: number[] = [];
  let text = '';
  let finishReason: string | null = null;
  const params = samplingParams({ temperature: 0, maxTokens });
  for await (const ev of generate(model, tokenizer, prompt, { params, samplerFactory: recordingSamplers(numLogitsRows, logits) })) {
    ids.push(...ev.tokenIds);
    text += ev.text;
    finishReason = ev.finishReason;
  }
  return { ids, text, logits, finishReason };
}
