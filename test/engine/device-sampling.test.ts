// Device sampling plumbing, without a GPU: a backend that offers sample() gets every eligible row
// (with a stream id independent of batch and preemption); logprobs or bias fall back to the host.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { deviceStreamId, type DeviceSampleRow } from '../../src/engine/device-sampling.js';
import type { EngineOutput } from '../../src/engine/engine-api.js';
import { samplingParams, type SamplingParams } from '../../src/engine/sampling-params.js';
import type { Backend, Tensor } from '../../src/runtime/backend.js';
import type { CausalLM } from '../../src/model/types.js';
import { disposeTinyModel, tinyModel } from './tiny-model.js';

after(disposeTinyModel);

/**
 * The tiny model's backend given a sample() that runs argmax on the device and records the rows it
 * got (an own property on the backend object: ops check tensor ownership by identity).
 */
async function withDeviceSampler(): Promise<{ model: CausalLM; rows: DeviceSampleRow[][] }> {
  const { model } = await tinyModel();
  const rows: DeviceSampleRow[][] = [];
  const base = model.backend;
  const sample = (out: Tensor, logits: Tensor, r: readonly DeviceSampleRow[]): void => {
    rows.push([...r]);
    base.argmax(out, logits);
  };
  Object.defineProperty(base, 'sample', { value: sample, configurable: true });
  return { model, rows };
}

function removeDeviceSampler(b: Backend): void {
  delete (b as unknown as { sample?: unknown }).sample;
}

async function run(e: AsyncEngine, id: string, params: SamplingParams): Promise<EngineOutput[]> {
  const outs: EngineOutput[] = [];
  for await (const o of e.generate({ requestId: id, promptTokenIds: [5, 6, 7, 8, 9], params })) outs.push(o);
  return outs;
}

test('eligible rows are sampled on the device with per-position stream ids', async () => {
  const { model, rows } = await withDeviceSampler();
  const e = new AsyncEngine({ model, modelId: 'tiny', numBlocks: 32 });
  const outs = await run(
    e,
    'a',
    samplingParams({ temperature: 0.7, topK: 5, seed: 77, maxTokens: 4, ignoreEos: true, repetitionPenalty: 1.1 }),
  );
  assert.equal(rows.length, 4);
  const ids = outs.flatMap((o) => o.newTokenIds);
  rows.forEach((step, k) => {
    assert.equal(step.length, 1);
    const r = step[0]!;
    assert.equal(r.temperature, 0.7);
    assert.equal(r.topK, 5);
    assert.equal(r.seed, deviceStreamId(77, 0, k));
    assert.deepEqual([...r.history], [5, 6, 7, 8, 9, ...ids.slice(0, k)], 'penalties see prompt + output');
    assert.equal(r.numGenerated, k);
  });
  await e.shutdown();
  removeDeviceSampler(model.backend);
});

test('logprobs or logit bias fall back to host sampling; deviceSampling: false turns it off', async () => {
  const { model, rows } = await withDeviceSampler();
  const e = new AsyncEngine({ model, modelId: 'tiny', numBlocks: 32 });
  await run(e, 'l', samplingParams({ temperature: 1, seed: 1, maxTokens: 3, ignoreEos: true, logprobs: 1 }));
  await run(e, 'b', samplingParams({ temperature: 1, seed: 1, maxTokens: 3, ignoreEos: true, logitBias: new Map([[3, -100]]) }));
  assert.equal(rows.length, 0);
  await e.shutdown();
  const off = new AsyncEngine({ model, modelId: 'tiny', numBlocks: 32, deviceSampling: false });
  await run(off, 's', samplingParams({ temperature: 1, seed: 1, maxTokens: 3, ignoreEos: true }));
  assert.equal(rows.length, 0);
  await off.shutdown();
  removeDeviceSampler(model.backend);
});

test('stream ids: below 2^53, distinct across choices and positions, stable for the same inputs', () => {
  const seen = new Set<number>();
  for (const seed of [0, 1, 2 ** 40 + 3, 2 ** 48 - 2]) {
    for (let index = 0; index < 4; index++) {
      for (let pos = 0; pos < 50; pos++) {
        const id = deviceStreamId(seed, index, pos);
        assert.ok(Number.isSafeInteger(id) && id >= 0);
        assert.equal(id, deviceStreamId(seed, index, pos));
        seen.add(id);
      }
    }
  }
  assert.equal(seen.size, 4 * 4 * 50);
});
