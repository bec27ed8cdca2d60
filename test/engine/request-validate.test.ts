// The one request-validation boundary (engine/request-validate.ts): each problem is one typed error
// with one wording, named by the request field the prompt came from; the context limit counts
// prompt + max_tokens for generation and the prompt alone for an embedding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineRequest } from '../../src/engine/engine-api.js';
import { validateEngineRequest } from '../../src/engine/request-validate.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import { TokenmillError } from '../../src/util/errors.js';

const LIMITS = { vocabSize: 100, maxModelLen: 16, canEmbed: true };

function req(promptTokenIds: number[], params: Partial<SamplingParams> = {}, extra: Partial<EngineRequest> = {}): EngineRequest {
  return { requestId: 'r', promptTokenIds, params: samplingParams({ maxTokens: 4, ...params }), ...extra };
}

function errorOf(er: EngineRequest, limits = LIMITS): TokenmillError {
  try {
    validateEngineRequest(er, limits);
  } catch (e) {
    assert.ok(e instanceof TokenmillError);
    return e;
  }
  assert.fail('expected a TokenmillError');
}

test('a prompt token outside the vocabulary: invalid_argument naming the prompt field, one wording for prompts and params', () => {
  for (const [er, param] of [
    [req([1, 100]), 'prompt'],
    [req([1, -1], {}, { promptParam: 'messages' }), 'messages'],
    [req([1, 2.5], {}, { promptParam: 'input.1' }), 'input.1'],
    [req([1], { stopTokenIds: [100] }), 'stop_token_ids'],
    [req([1], { logitBias: new Map([[100, 1]]) }), 'logit_bias'],
  ] as const) {
    const e = errorOf(er);
    assert.equal(e.code, 'invalid_argument');
    assert.equal(e.param, param);
    assert.match(e.message, new RegExp(`^${param.replace('.', '\\.')}: token id \\S+ is outside the vocabulary \\[0, 100\\)\\.$`));
  }
});

test('an empty prompt is invalid_argument naming its field', () => {
  const e = errorOf(req([], {}, { promptParam: 'prompt.2' }));
  assert.equal(e.code, 'invalid_argument');
  assert.equal(e.param, 'prompt.2');
  assert.equal(e.message, 'prompt.2: the prompt is empty (0 tokens).');
});

test('context length: prompt + max_tokens over the limit, all three numbers, param = the prompt field', () => {
  assert.doesNotThrow(() => validateEngineRequest(req(new Array(12).fill(1), { maxTokens: 4 }), LIMITS));
  const e = errorOf(req(new Array(12).fill(1), { maxTokens: 5 }, { promptParam: 'messages' }));
  assert.equal(e.code, 'context_length_exceeded');
  assert.equal(e.param, 'messages');
  assert.equal(
    e.message,
    "This model's maximum context length is 16 tokens. However, you requested 17 tokens (12 in the messages, 5 for the completion). " +
      'Please reduce the length of the messages or of max_tokens.',
  );
  assert.deepEqual(e.details, { promptTokens: 12, maxTokens: 5, maxModelLen: 16 });
  // 'prompt.1' reads as 'the prompt' in the sentence and stays the exact field in param.
  const multi = errorOf(req(new Array(16).fill(1), { maxTokens: 1 }, { promptParam: 'prompt.1' }));
  assert.equal(multi.param, 'prompt.1');
  assert.match(multi.message, /\(16 in the prompt, 1 for the completion\)/);
});

test('embeddings: the prompt may fill the context (max_tokens ignored), one more is context_length_exceeded; n = 1; no constraint', () => {
  const embed = { pooling: 'last' as const, promptParam: 'input' };
  assert.doesNotThrow(() => validateEngineRequest(req(new Array(16).fill(1), { maxTokens: 100 }, embed), LIMITS));
  const long = errorOf(req(new Array(17).fill(1), {}, embed));
  assert.equal(long.code, 'context_length_exceeded');
  assert.equal(long.param, 'input');
  assert.match(long.message, /you requested 17 tokens \(17 in the input, 0 for the completion\)\./);
  assert.match(long.message, /Please reduce the length of the input\.$/);
  assert.equal(errorOf(req([1], { n: 2 }, embed)).param, 'n');
  assert.equal(errorOf(req([1], {}, embed), { ...LIMITS, canEmbed: false }).code, 'unsupported_feature');
  const constrained = req([1], { constraint: { type: 'json_object' } }, embed);
  assert.equal(errorOf(constrained).param, 'response_format');
});

test('sampling params are checked here too (the sampler trusts them): the first bad field names its OpenAI param', () => {
  assert.equal(errorOf(req([1], { topP: 0 })).param, 'top_p');
  assert.equal(errorOf(req([1], { n: 0 })).param, 'n');
  assert.equal(errorOf(req([1], { maxTokens: 0 })).param, 'max_tokens');
});
