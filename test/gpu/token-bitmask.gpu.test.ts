// Grammar masks on the device (CUDA): applyTokenBitmask then sample() never draws a masked token,
// whatever the knobs (temperature, top-k, top-p, min-p, penalties) and however few tokens are left;
// greedy picks the host sampler's token (argmax over the allowed ids); and through the real Engine
// (deviceGrammarMasks: true, a tiny random model with the synthetic byte-level tokenizer)
// constrained requests stay on the device and give 0 outputs a fresh matcher rejects. The exact
// kernel-vs-reference check is test/conformance/token-bitmask.test.ts (the suite's conformance stage).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { checkOutput } from '../../src/engine/grammar/constraint-check.js';
import { grammarCompilerFor } from '../../src/engine/grammar/grammar-compiler.js';
import { gatherAllowed, argmax } from '../../src/engine/sampler-select.js';
import { samplingParams, type Constraint } from '../../src/engine/sampling-params.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import type { Backend, DeviceSampleRow } from '../../src/runtime/backend.js';
import { createCudaBackend } from '../../src/runtime/select.js';
import { bitmaskWords, packTokenBitmasks } from '../../src/runtime/token-bitmask.js';
import { Rng } from '../conformance/helpers.js';
import { cudaSkip, writeResult } from './gpu-env.js';

const skip = cudaSkip;

describe('grammar bitmask + device sampling (CUDA)', { skip }, () => {
  let be: Backend & { sample(o: unknown, l: unknown, r: readonly DeviceSampleRow[]): void };
  before(() => {
    be = createCudaBackend({ dtype: 'f32' }) as typeof be;
  });
  after(() => be?.dispose());

  it('masked tokens are never drawn: every knob, masks from one token to all but one', async () => {
    const rng = new Rng(9);
    const base = {
      temperature: 1,
      topK: 0,
      topP: 1,
      minP: 0,
      repetitionPenalty: 1,
      presencePenalty: 0,
      frequencyPenalty: 0,
      history: new Int32Array(0),
      numGenerated: 0,
      seed: 0,
    };
    const knobs: Partial<typeof base>[] = [
      {},
      { temperature: 0 },
      { topK: 50 },
      { topP: 0.9 },
      { minP: 0.05 },
      { temperature: 2, topK: 3, topP: 0.5 },
      { repetitionPenalty: 1.5, history: Int32Array.of(1, 2, 3), numGenerated: 1 },
    ];
    let draws = 0;
    for (const V of [512, 32000, 151936]) {
      const S = 48;
      const x = rng.normals(S * V, 3);
      const words = bitmaskWords(V);
      const masks = Array.from({ length: S }, (_, s) => {
        const m = new Int32Array(words);
        const density = [1, 2, 40, V / 2, V - 1][s % 5]!;
        if (density >= V / 2) {
          for (let v = 0; v < V; v++) if (density === V - 1 ? v !== s : rng.next() < 0.5) m[v >>> 5]! |= 1 << (v & 31);
        } else {
          for (let k = 0; k < density; k++) {
            const v = rng.int(0, V);
            m[v >>> 5]! |= 1 << (v & 31);
          }
        }
        return m;
      });
      const logits = be.alloc([S, V], 'f32');
      const out = be.alloc([S], 'i32');
      try {
        for (const k of knobs) {
          be.upload(logits, x);
          be.applyTokenBitmask!(
            logits,
            packTokenBitmasks(
              masks.map((mask, row) => ({ row, mask })),
              words,
            ),
            S,
            words,
          );
          be.sample(
            out,
            logits,
            Array.from({ length: S }, (_, s) => ({ ...base, ...k, seed: 1 + s + draws })),
          );
          const ids = await be.readInt32(out);
          draws += S;
          ids.forEach((id, s) => {
            const m = masks[s]!;
            assert.ok(
              ((m[id >>> 5]! >>> (id & 31)) & 1) === 1,
              `V=${V} row ${s} ${JSON.stringify({ ...k, history: undefined })}: drew masked token ${id}`,
            );
            if (k.temperature === 0) {
              const allowedIds = new Int32Array(V);
              const allowedX = new Float32Array(V);
              const n = gatherAllowed(x.subarray(s * V, (s + 1) * V), m, allowedIds, allowedX);
              assert.equal(id, allowedIds[argmax(allowedX.subarray(0, n))], `V=${V} row ${s}: greedy differs from the host's pick`);
            }
          });
        }
      } finally {
        be.free(logits);
        be.free(out);
      }
    }
    writeResult('token-bitmask-draws', { draws });
  });

  it('through the Engine: constrained requests sample on the device, 0 outputs outside the grammar', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-gpu-mask-'));
    try {
      writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 3 });
      const { model, generationConfig } = await loadModel(dir, be, { maxTokensPerStep: 512, maxLogitsPerStep: 64 });
      const tokenizer = loadTokenizer(dir);
      const eos = generationConfig.eosTokenIds.length > 0 ? generationConfig.eosTokenIds : model.config.eosTokenIds;
      const eng = new AsyncEngine({
        model,
        modelId: 'tiny',
        tokenizer,
        eosTokenIds: eos,
        numBlocks: 256,
        blockSize: 16,
        maxNumSeqs: 32,
        deviceGrammarMasks: true,
      });
      const schema = {
        type: 'object',
        additionalProperties: false,
        required: ['a', 'n'],
        properties: { a: { enum: ['x', 'yy'] }, n: { type: 'integer', minimum: 0, maximum: 9 }, ok: { type: 'boolean' } },
      };
      const c: Constraint = { type: 'json_schema', schema, strict: true };
      const prompt = await tokenizer.encode('JSON:');
      await eng.engine.prepare(samplingParams({ constraint: c }));
      const results = await Promise.all(
        Array.from({ length: 32 }, async (_, i) => {
          const params = samplingParams({
            temperature: i % 4 === 0 ? 0 : 1,
            topP: i % 3 === 0 ? 0.9 : 1,
            seed: i,
            maxTokens: 40,
            constraint: c,
            n: i % 8 === 1 ? 2 : 1,
          });
          const ids: number[][] = Array.from({ length: params.n }, () => []);
          const text: string[] = Array.from({ length: params.n }, () => '');
          const fin: (string | null)[] = Array.from({ length: params.n }, () => null);
          for await (const o of eng.generate({ requestId: `r${i}`, promptTokenIds: [...prompt, i], params })) {
            ids[o.index]!.push(...o.newTokenIds);
            text[o.index] += o.newText;
            if (o.finished) fin[o.index] = o.finishReason;
          }
          return ids.map((t, k) => ({ ids: t, text: text[k]!, finish: fin[k] }));
        }),
      );
      const stats = { ...eng.engine.runner.grammarStats };
      await eng.shutdown();
      const cache = await grammarCompilerFor(tokenizer, model.config.vocabSize, eos);
      const compiled = await cache.compile(c);
      let finished = 0;
      for (const r of results.flat()) {
        const matcher = await cache.xg.GrammarMatcher.createGrammarMatcher(compiled.compiled, [...eos]);
        try {
          assert.ok(
            r.ids.every((t) => matcher.acceptToken(t)),
            `a token outside the grammar in ${JSON.stringify(r.text)}`,
          );
        } finally {
          matcher.dispose();
        }
        if (r.finish === 'stop') {
          finished++;
          assert.ok(checkOutput(c, r.text).ok, r.text);
        }
      }
      assert.ok(
        stats.numDeviceSteps > 0 && stats.numDeviceSteps === stats.numSteps,
        `every constrained step on the device: ${JSON.stringify(stats)}`,
      );
      writeResult('token-bitmask-engine', { outputs: results.flat().length, finished, stats });
      model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
