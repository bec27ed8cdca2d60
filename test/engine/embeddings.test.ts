// Embedding requests through the real Engine (prefill only, pooled final hidden states) against an
// independent dense f64 forward: last-token and mean pooling, in one step and over chunked
// prefill, next to concurrent generate requests, after a prefix-cache hit, under preemption, from a
// base-model checkpoint (no model. prefix, no lm_head), and on the CPU backend (skipped with a reason
// where the addon is missing; CI fails).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncEngine, type AsyncEngineOptions } from '../../src/engine/async-engine.js';
import type { EngineOutput } from '../../src/engine/engine-api.js';
import type { PoolingType } from '../../src/engine/pooling.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { readSafetensorsFile } from '../../src/model/safetensors.js';
import { writeSafetensors } from '../../src/model/safetensors-writer.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';
import { denseFinalHidden } from '../model/dense-forward.js';
import { compareLogits, describe, makeTinyModel, skipOrFailInCi, tokenSeq, type TinyModelDir } from '../model/tiny-models.js';

const EMBED_PARAMS = samplingParams({ temperature: 0, maxTokens: 1 });

function densePooled(m: TinyModelDir, tokens: readonly number[], pooling: PoolingType): Float64Array {
  const rows = denseFinalHidden(`${m.dir}/model.safetensors`, m.config, tokens);
  if (pooling === 'last') return rows.at(-1)!;
  const out = new Float64Array(m.config.hiddenSize);
  for (const r of rows) for (let i = 0; i < out.length; i++) out[i] = out[i]! + r[i]! / rows.length;
  return out;
}

async function withEngine<T>(
  m: TinyModelDir,
  backend: Backend,
  opts: Partial<AsyncEngineOptions>,
  fn: (e: AsyncEngine) => Promise<T>,
): Promise<T> {
  const { model } = await loadModel(m.dir, backend, { maxTokensPerStep: 64, maxLogitsPerStep: 16 });
  const engine = new AsyncEngine({ model, modelId: 'tiny', numBlocks: 64, blockSize: 8, maxNumBatchedTokens: 64, maxNumSeqs: 16, ...opts });
  try {
    return await fn(engine);
  } finally {
    await engine.shutdown();
    model.dispose();
  }
}

async function embed(e: AsyncEngine, id: string, tokens: number[], pooling: PoolingType): Promise<EngineOutput> {
  const outs: EngineOutput[] = [];
  for await (const o of e.generate({ requestId: id, promptTokenIds: tokens, params: EMBED_PARAMS, pooling })) outs.push(o);
  assert.equal(outs.length, 1, 'one output per embedding request');
  const o = outs[0]!;
  assert.equal(o.finished, true);
  assert.equal(o.finishReason, 'stop');
  assert.equal(o.numGeneratedTokens, 0);
  assert.deepEqual(o.newTokenIds, []);
  assert.ok(o.embedding instanceof Float32Array);
  return o;
}

function assertClose(got: Float32Array, want: Float64Array, what: string, tol = 1e-4): void {
  const cmp = compareLogits(got, want, tol, tol);
  assert.ok(cmp.worstRatio <= 1, `${what}: ${describe(cmp)}`);
}

test('last and mean pooling match the dense forward: one step, chunked prefill, beside generation (reference)', async () => {
  for (const preset of ['tiny-qwen3', 'tiny-llama3'] as const) {
    const m = makeTinyModel(preset);
    try {
      const tokens = tokenSeq(40, m.config.vocabSize, 9);
      const want = { last: densePooled(m, tokens, 'last'), mean: densePooled(m, tokens, 'mean') };
      // 64-token budget: the prompt fits one step. 16: three chunks, with a generate request beside.
      for (const budget of [64, 16]) {
        await withEngine(m, createReferenceBackend(), { maxNumBatchedTokens: budget }, async (e) => {
          const gen = (async () => {
            let n = 0;
            for await (const o of e.generate({
              requestId: 'gen',
              promptTokenIds: tokenSeq(10, m.config.vocabSize, 2),
              params: samplingParams({ temperature: 0, maxTokens: 6, ignoreEos: true }),
            }))
              n += o.newTokenIds.length;
            return n;
          })();
          const [last, mean] = await Promise.all([embed(e, 'a', tokens, 'last'), embed(e, 'b', tokens, 'mean')]);
          assert.equal(await gen, 6, 'the generate request beside the embeddings is unaffected');
          assert.equal(last.numPromptTokens, 40);
          assertClose(last.embedding!, want.last, `${preset} last, budget ${budget}`);
          assertClose(mean.embedding!, want.mean, `${preset} mean, budget ${budget}`);
          assert.equal(e.stats().numFreeBlocks, e.stats().numTotalBlocks, 'every block returned');
        });
      }
    } finally {
      m.cleanup();
    }
  }
});

test('prefix cache: last pooling reuses cached blocks with the same result; mean pooling never starts from them', async () => {
  const m = makeTinyModel('tiny-qwen3');
  try {
    const tokens = tokenSeq(33, m.config.vocabSize, 4);
    await withEngine(m, createReferenceBackend(), {}, async (e) => {
      const first = await embed(e, 'a', tokens, 'last');
      const again = await embed(e, 'b', tokens, 'last');
      assert.equal(first.numCachedPromptTokens, 0);
      assert.equal(again.numCachedPromptTokens, 32, 'four full blocks from the prefix cache');
      assertClose(again.embedding!, densePooled(m, tokens, 'last'), 'last after a prefix hit');
      const mean = await embed(e, 'c', tokens, 'mean');
      assert.equal(mean.numCachedPromptTokens, 0);
      assertClose(mean.embedding!, densePooled(m, tokens, 'mean'), 'mean with a warm cache');
    });
  } finally {
    m.cleanup();
  }
});

test('many embeddings in a small KV pool (preemption and recompute) all match their solo results', async () => {
  const m = makeTinyModel('tiny-llama');
  try {
    const prompts = Array.from({ length: 12 }, (_, i) => tokenSeq(20 + i, m.config.vocabSize, 100 + i));
    const solo = await withEngine(m, createReferenceBackend(), {}, async (e) => {
      const out: Float32Array[] = [];
      for (const [i, p] of prompts.entries()) out.push((await embed(e, `s${i}`, p, 'mean')).embedding!);
      return out;
    });
    // 12 blocks of 8 = 96 slots for 12 prompts of 20-31 tokens beside 4 growing generate requests.
    await withEngine(m, createReferenceBackend(), { numBlocks: 12, maxNumBatchedTokens: 32, enablePrefixCaching: false }, async (e) => {
      const gens = Array.from({ length: 4 }, async (_, i) => {
        for await (const o of e.generate({
          requestId: `g${i}`,
          promptTokenIds: tokenSeq(6, m.config.vocabSize, i),
          params: samplingParams({ temperature: 0, maxTokens: 20, ignoreEos: true }),
        }))
          void o;
      });
      const got = await Promise.all(prompts.map((p, i) => embed(e, `e${i}`, p, i % 2 === 0 ? 'mean' : 'last')));
      await Promise.all(gens);
      assert.ok(e.engine.scheduler.numPreemptions > 0, 'the pool was small enough to preempt');
      got.forEach((o, i) => {
        if (i % 2 === 0) assertClose(o.embedding!, Float64Array.from(solo[i]!), `prompt ${i} mean`, 1e-5);
        else assertClose(o.embedding!, densePooled(m, prompts[i]!, 'last'), `prompt ${i} last`);
      });
      assert.equal(e.stats().numFreeBlocks, e.stats().numTotalBlocks);
    });
  } finally {
    m.cleanup();
  }
});

test('embedding admission: n must be 1, the input may use the whole context, one token more is context_length_exceeded', async () => {
  const m = makeTinyModel('tiny-llama');
  try {
    await withEngine(m, createReferenceBackend(), { maxModelLen: 48 }, async (e) => {
      const full = await embed(e, 'full', tokenSeq(48, m.config.vocabSize, 1), 'last');
      assert.equal(full.numPromptTokens, 48);
      assert.throws(
        () => e.generate({ requestId: 'long', promptTokenIds: tokenSeq(49, m.config.vocabSize, 1), params: EMBED_PARAMS, pooling: 'last' }),
        (err: unknown) => err instanceof TokenmillError && err.code === 'context_length_exceeded',
      );
      assert.throws(
        () => e.generate({ requestId: 'n2', promptTokenIds: [1, 2], params: samplingParams({ n: 2 }), pooling: 'mean' }),
        (err: unknown) => err instanceof TokenmillError && err.code === 'invalid_argument',
      );
    });
  } finally {
    m.cleanup();
  }
});

test(
  'a base-model checkpoint (no model. prefix, no lm_head, as ' + 'Qwen3-Embedding ships) loads and embeds like the CausalLM one',
  async () => {
    const m = makeTinyModel('tiny-llama3'); // untied: lm_head exists in the CausalLM checkpoint
    const base = makeTinyModel('tiny-llama3');
    try {
      const file = `${m.dir}/model.safetensors`;
      const { tensors } = readSafetensorsFile(file);
      const stripped = [...tensors.values()]
        .filter((t) => t.name !== 'lm_head.weight')
        .map((t) => ({ name: t.name.replace(/^model\./, ''), dtype: t.dtype, shape: t.shape, data: t.data.slice() }));
      assert.ok(stripped.some((t) => t.name === 'embed_tokens.weight') && !stripped.some((t) => t.name.startsWith('model.')));
      writeSafetensors(`${base.dir}/model.safetensors`, stripped);
      const tokens = tokenSeq(21, m.config.vocabSize, 8);
      const want = await withEngine(m, createReferenceBackend(), {}, async (e) => (await embed(e, 'a', tokens, 'last')).embedding!);
      const got = await withEngine(base, createReferenceBackend(), {}, async (e) => (await embed(e, 'b', tokens, 'last')).embedding!);
      assert.deepEqual(Array.from(got), Array.from(want));
    } finally {
      m.cleanup();
      base.cleanup();
    }
  },
);

const cpu = cpuAddonAvailable();
test('CPU backend embeddings match the reference backend', {
  skip: skipOrFailInCi(cpu.available, `CPU addon unavailable: ${cpu.reason ?? ''}`),
}, async () => {
  const m = makeTinyModel('tiny-qwen2');
  const backend = createCpuBackend({ numThreads: 2 });
  try {
    const tokens = tokenSeq(37, m.config.vocabSize, 12);
    await withEngine(m, backend, { maxNumBatchedTokens: 16 }, async (e) => {
      assertClose((await embed(e, 'l', tokens, 'last')).embedding!, densePooled(m, tokens, 'last'), 'cpu last', 1e-3);
      assertClose((await embed(e, 'm', tokens, 'mean')).embedding!, densePooled(m, tokens, 'mean'), 'cpu mean', 1e-3);
    });
  } finally {
    backend.dispose();
    m.cleanup();
  }
});
