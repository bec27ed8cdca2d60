// The engine on the CUDA backend (npm run test:gpu): a seeded tiny Llama served with aborts,
// preemption and n > 1; the KV pool must return to empty and nothing may fail. Token equality
// against solo runs is asserted in f32 and reported (not asserted) in bf16, where batch shape
// changes kernel paths and rounding. Skips when no GPU is present.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import type { EngineOutput } from '../../src/engine/engine-api.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { createCudaBackend, probeCuda } from '../../src/runtime/select.js';

const probe = probeCuda();
const skip = probe.available ? false : `no CUDA: ${probe.reason}`;
const dir = mkdtempSync(join(tmpdir(), 'tm-engine-gpu-'));
after(() => rmSync(dir, { recursive: true, force: true }));
if (skip === false) writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 11, tokenizer: false });

const prompt = (i: number, len: number): number[] => Array.from({ length: len }, (_, j) => (j * 37 + i * 101 + 5) % 500);

async function tokensOf(it: AsyncIterable<EngineOutput>, stopAfter = Infinity): Promise<number[]> {
  const t: number[] = [];
  for await (const o of it) {
    t.push(...o.newTokenIds);
    if (t.length >= stopAfter) break;
  }
  return t;
}

for (const dtype of ['f32', 'bf16'] as const) {
  test(`engine on cuda (${dtype}): aborts, preemption, n > 1; the pool returns to empty`, { skip }, async () => {
    const backend = createCudaBackend({ dtype });
    const { model } = await loadModel(dir, backend, { maxTokensPerStep: 256, maxLogitsPerStep: 64 });
    // Even requests greedy, odd ones seeded sampling (on the device: the CUDA backend offers sample()).
    const params = (maxTokens: number, i: number) =>
      samplingParams({ temperature: i % 2 === 0 ? 0 : 0.9, topP: 0.95, seed: 1000 + (i % 8), maxTokens, ignoreEos: true });
    const mk = (numBlocks: number, blockSize = 16) =>
      new AsyncEngine({ model, modelId: 'tiny', numBlocks, blockSize, maxNumBatchedTokens: 256, maxNumSeqs: 32 });
    // Solo references.
    const solo: number[][] = [];
    for (let i = 0; i < 8; i++) {
      const e = mk(64);
      solo.push(await tokensOf(e.generate({ requestId: `s${i}`, promptTokenIds: prompt(i, 20 + i), params: params(12, i) })));
      await e.shutdown();
    }
    // 50 streams, every 5th cancelled; the first 8 are the solo requests.
    const e = mk(256);
    const runs = Array.from({ length: 50 }, (_, i) =>
      tokensOf(
        e.generate({ requestId: `r${i}`, promptTokenIds: prompt(i, 20 + (i < 8 ? i : i % 30)), params: params(12, i) }),
        i % 5 === 4 ? 3 : Infinity,
      ),
    );
    const got = await Promise.all(runs);
    got.forEach((t, i) => assert.equal(t.length, i % 5 === 4 ? 3 : 12, `stream ${i}`));
    await new Promise((r) => setImmediate(r));
    assert.equal(e.stats().numFreeBlocks, 256);
    await e.shutdown();
    // Preemption: 24 blocks of 4 tokens hold 3 of these requests at once.
    let preemptions = 0;
    const p = new AsyncEngine({
      model,
      modelId: 'tiny',
      numBlocks: 24,
      blockSize: 4,
      maxNumBatchedTokens: 64,
      maxNumSeqs: 32,
      observer: { onPreemption: () => void preemptions++ },
    });
    const pre = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        tokensOf(p.generate({ requestId: `p${i}`, promptTokenIds: prompt(i, 20 + i), params: params(12, i) })),
      ),
    );
    assert.equal(p.stats().numFreeBlocks, 24);
    await p.shutdown();
    // n > 1 shares the prompt.
    const n3 = new AsyncEngine({ model, modelId: 'tiny', numBlocks: 64, maxNumBatchedTokens: 256, maxNumSeqs: 32 });
    const outs: number[][] = [[], [], []];
    for await (const o of n3.generate({
      requestId: 'n',
      promptTokenIds: prompt(0, 20),
      params: samplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true, n: 3 }),
    }))
      outs[o.index]!.push(...o.newTokenIds);
    const seededN: number[][] = [[], [], []];
    for await (const o of n3.generate({
      requestId: 'm',
      promptTokenIds: prompt(0, 20),
      params: samplingParams({ temperature: 1, seed: 5, maxTokens: 12, ignoreEos: true, n: 3 }),
    }))
      seededN[o.index]!.push(...o.newTokenIds);
    assert.ok(new Set(seededN.map((t) => t.join())).size > 1, 'seeded choices are separate streams');
    assert.equal(n3.stats().numFreeBlocks, 64);
    await n3.shutdown();
    const same = (a: number[][], ref = (i: number) => solo[i]!) => a.filter((t, i) => t.join() === ref(i).join()).length;
    const batched = [0, 1, 2, 3, 5, 6, 7].map((i) => got[i]!);
    const report = {
      dtype,
      preemptions,
      batchedMatchSolo: `${[0, 1, 2, 3, 5, 6, 7].filter((i) => got[i]!.join() === solo[i]!.join()).length}/${batched.length}`,
      preemptedMatchSolo: `${same(pre)}/${pre.length}`,
      nChoicesMatchSolo: `${same(outs, () => solo[0]!)}/3`,
    };
    console.log(`# engine-gpu ${JSON.stringify(report)}`);
    assert.ok(preemptions > 0);
    if (dtype === 'f32') {
      for (const i of [0, 1, 2, 3, 5, 6, 7]) assert.deepEqual(got[i], solo[i], `batched request ${i}`);
      assert.deepEqual(pre, solo);
      for (const t of outs) assert.deepEqual(t, solo[0]);
    }
    model.dispose();
    backend.dispose();
  });
}
