// generate() (one request through the serving Engine) on a seeded tiny Llama: tokens equal a
// hand-driven greedy loop over the model's forward (test/model/forward-driver),
// text equals the tokenizer's decode, finish reasons (length, stop string, EOS, context, abort),
// stats, logprobs, and typed errors for bad prompts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, type GenerateEvent } from '../../src/engine/generate.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { ForwardDriver } from '../model/forward-driver.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import type { CausalLM } from '../../src/model/types.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';

let dir = '';
let backend: Backend;
let model: CausalLM;
let tok: ModelTokenizer;
let prompt: number[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tm-generate-'));
  writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 5 });
  backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 2 }) : createReferenceBackend();
  // A small step size so that the prompt's prefill takes several chunks.
  model = (await loadModel(dir, backend, { maxTokensPerStep: 8 })).model;
  tok = loadTokenizer(dir);
  prompt = await tok.encode('The quick brown fox jumps over the lazy dog.');
});

after(() => {
  model?.dispose();
  backend?.dispose();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

async function collect(
  params: Partial<SamplingParams>,
  ids = prompt,
  signal?: AbortSignal,
): Promise<{ events: GenerateEvent[]; ids: number[]; text: string; last: GenerateEvent }> {
  const events: GenerateEvent[] = [];
  for await (const ev of generate(model, tok, ids, { params: samplingParams(params), signal })) events.push(ev);
  return { events, ids: events.flatMap((e) => e.tokenIds), text: events.map((e) => e.text).join(''), last: events[events.length - 1]! };
}

test('greedy: the same tokens as a hand-driven argmax loop; text equals decode(ids); stats', async () => {
  assert.ok(prompt.length > 8, 'the prompt spans several prefill chunks');
  const r = await collect({ temperature: 0, maxTokens: 12, ignoreEos: true });
  const driver = new ForwardDriver(model, { maxSeqLen: 64 });
  const want: number[] = [];
  let logits = await driver.prefill(prompt);
  for (let i = 0; i < 12; i++) {
    let best = 0;
    for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
    want.push(best);
    logits = await driver.decode(best);
  }
  driver.dispose();
  assert.deepEqual(r.ids, want);
  assert.equal(r.text, await tok.decode(r.ids));
  assert.equal(r.last.finishReason, 'length');
  assert.ok(r.events.slice(0, -1).every((e) => e.finishReason === null && e.stats === undefined));
  const s = r.last.stats!;
  assert.equal(s.numPromptTokens, prompt.length);
  assert.equal(s.numGeneratedTokens, 12);
  assert.ok(s.prefillTokPerS > 0 && s.decodeTokPerS > 0 && s.prefillMs >= 0 && s.decodeMs >= 0);
});

test('seeded sampling is reproducible and logprobs ride along', async () => {
  const p = { temperature: 1, seed: 99, maxTokens: 10, ignoreEos: true, logprobs: 3 };
  const [a, b] = [await collect(p), await collect(p)];
  assert.deepEqual(a.ids, b.ids);
  for (const e of a.events) {
    assert.equal(e.logprobs!.length, 1);
    assert.equal(e.logprobs![0]!.tokenId, e.tokenIds[0]);
    assert.ok(e.logprobs![0]!.logprob <= 0);
    assert.equal(e.logprobs![0]!.top.length, 3);
  }
});

test('a stop string cuts the text and finishes with stop', async () => {
  const full = await collect({ temperature: 0, maxTokens: 30, ignoreEos: true });
  const mid = Math.floor(full.text.length / 2);
  const stop = full.text.slice(mid, mid + 2);
  const r = await collect({ temperature: 0, maxTokens: 30, ignoreEos: true, stop: [stop] });
  assert.equal(r.text, full.text.slice(0, full.text.indexOf(stop)));
  assert.equal(r.last.finishReason, 'stop');
  assert.ok(r.ids.length < 30);
});

test('EOS stops (no text of its own) unless ignoreEos', async () => {
  const eos = model.config.eosTokenIds[0]!;
  const bias = new Map([[eos, 100]]);
  const r = await collect({ temperature: 0, maxTokens: 5, logitBias: bias });
  assert.deepEqual(r.ids, [eos]);
  assert.equal(r.text, '');
  assert.equal(r.last.finishReason, 'stop');
  const ignored = await collect({ temperature: 0, maxTokens: 5, logitBias: bias, ignoreEos: true });
  assert.equal(ignored.ids.length, 5);
  assert.equal(ignored.last.finishReason, 'length');
});

test('the context limit ends generation with length; a prompt that fills it is context_length_exceeded', async () => {
  const ctx = model.config.maxPositionEmbeddings;
  const long = Array.from({ length: ctx - 3 }, (_, i) => 10 + (i % 200));
  const r = await collect({ temperature: 0, maxTokens: 100, ignoreEos: true }, long);
  assert.equal(r.ids.length, 3); // prompt + output fill the context exactly, as serve's max_model_len
  assert.equal(r.last.finishReason, 'length');
  await assert.rejects(
    collect({ maxTokens: 1 }, new Array<number>(ctx).fill(10)),
    (e: unknown) => e instanceof TokenmillError && e.code === 'context_length_exceeded',
  );
});

test('abort ends with finishReason abort', async () => {
  const ac = new AbortController();
  const events: GenerateEvent[] = [];
  for await (const ev of generate(model, tok, prompt, {
    params: samplingParams({ temperature: 0, maxTokens: 50, ignoreEos: true }),
    signal: ac.signal,
  })) {
    events.push(ev);
    if (events.length === 3) ac.abort();
  }
  assert.equal(events.length, 4);
  assert.equal(events[3]!.finishReason, 'abort');
});

test('bad prompts and params are invalid_argument', async () => {
  const isInvalid = (param: string) => (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument' && e.param === param;
  await assert.rejects(collect({}, []), isInvalid('prompt'));
  await assert.rejects(collect({}, [1, 99999]), isInvalid('prompt'));
  await assert.rejects(collect({ n: 2 }), isInvalid('n'));
  await assert.rejects(collect({ topP: 0 }), isInvalid('top_p'));
});
