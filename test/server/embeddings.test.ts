// /v1/embeddings through the official openai client against a live server on the real Engine (a
// seeded tiny random Qwen3 with the synthetic tokenizer, reference backend): vectors equal the
// L2-normalised pooled final hidden states of an independent dense f64 forward, float and base64
// (the client's default), batches of strings and token ids, Matryoshka dimensions, usage and cost,
// mean pooling, the sentence-transformers pooling declaration, and each bad input as a 400 envelope.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { resolvePooling } from '../../src/cli/serve.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { declaredPooling } from '../../src/model/pooling-config.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import type { ModelConfig } from '../../src/model/types.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';
import { denseFinalHidden } from '../model/dense-forward.js';

function normalised(v: ArrayLike<number>, dims = v.length): number[] {
  const x = Array.from(v).slice(0, dims);
  const n = Math.sqrt(x.reduce((a, b) => a + b * b, 0));
  return x.map((e) => e / n);
}

function assertVecClose(got: readonly number[], want: readonly number[], what: string, tol = 1e-4): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  assert.ok(worst <= tol, `${what}: max abs error ${worst}`);
}

async function expectBadRequest(p: Promise<unknown>, param: string | null, code?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `expected a 400, got ${String(e)}`);
    const err = e.error as { param?: string | null; code?: string | null; message?: string };
    if (param !== null) assert.equal(err.param, param, err.message);
    if (code !== undefined) assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('/v1/embeddings on a tiny random Qwen3 (real engine, openai client)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-embed-'));
  let config: ModelConfig;
  let stack: ModelStack;
  let server: TokenmillServer;
  let client: OpenAI;
  let url: string;
  const dense = (ids: readonly number[], pooling: 'last' | 'mean' = 'last'): number[] => {
    const rows = denseFinalHidden(join(dir, 'model.safetensors'), config, ids);
    if (pooling === 'last') return Array.from(rows.at(-1)!);
    return Array.from({ length: config.hiddenSize }, (_, i) => rows.reduce((a, r) => a + r[i]!, 0) / rows.length);
  };
  const tokenize = async (text: string): Promise<number[]> => {
    const res = await fetch(`${url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: text }),
    });
    return ((await res.json()) as { tokens: number[] }).tokens;
  };

  before(async () => {
    config = writeRandomModel(dir, MODEL_PRESETS['tiny-qwen3']!.config, { seed: 21 });
    const metrics = new ServerMetrics({ modelName: 'tiny-embed', usdPerHour: 3 });
    stack = await openModelStack({
      dir,
      modelId: 'tiny-embed',
      device: 'reference',
      kvCacheBytes: 4 * 1024 * 1024,
      maxModelLen: 64,
      usdPerHour: 3,
      observer: metrics,
    });
    server = await createServer({ engine: stack.engine, frontend: stack.frontend, metrics });
    url = (await server.listen({ port: 0 })).url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
  });
  after(async () => {
    await server?.close();
    await stack?.frontend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a string: float and base64 (the client default) both equal the normalised dense last-token state', async () => {
    const text = 'The quick brown fox';
    const want = normalised(dense(await tokenize(text)));
    const raw = await client.embeddings.create({ model: 'tiny-embed', input: text, encoding_format: 'float' }).withResponse();
    const r = raw.data;
    assert.equal(r.object, 'list');
    assert.equal(r.model, 'tiny-embed');
    assert.equal(r.data.length, 1);
    assert.equal(r.data[0]!.object, 'embedding');
    assert.equal(r.data[0]!.index, 0);
    assert.equal(r.data[0]!.embedding.length, config.hiddenSize);
    assertVecClose(r.data[0]!.embedding, want, 'float');
    const norm = Math.sqrt(r.data[0]!.embedding.reduce((a, b) => a + b * b, 0));
    assert.ok(Math.abs(norm - 1) < 1e-6, `unit norm, got ${norm}`);
    const numTokens = (await tokenize(text)).length;
    assert.equal(r.usage.prompt_tokens, numTokens);
    assert.equal(r.usage.total_tokens, numTokens);
    const cost = (r.usage as unknown as { cost_usd: number }).cost_usd;
    assert.ok(cost > 0, 'cost_usd is charged');
    assert.equal(Number(raw.response.headers.get('x-tokenmill-cost-usd')), Number(cost.toFixed(9)));

    const viaBase64 = await client.embeddings.create({ model: 'tiny-embed', input: text }); // the client asks for base64 and decodes
    assert.deepEqual(viaBase64.data[0]!.embedding, Array.from(Float32Array.from(r.data[0]!.embedding)));
    const explicit = await client.embeddings.create({ model: 'tiny-embed', input: text, encoding_format: 'base64' });
    const b64 = explicit.data[0]!.embedding as unknown as string;
    assert.equal(typeof b64, 'string');
    const buf = Buffer.from(b64, 'base64');
    assert.deepEqual(Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4)), viaBase64.data[0]!.embedding);
  });

  it('batches of strings and of token ids keep their order; usage sums the inputs', async () => {
    const texts = ['alpha', 'a much longer second input about engines', 'c'];
    const ids = await Promise.all(texts.map(tokenize));
    const r = await client.embeddings.create({ model: 'tiny-embed', input: texts, encoding_format: 'float' });
    assert.deepEqual(
      r.data.map((d) => d.index),
      [0, 1, 2],
    );
    r.data.forEach((d, i) => assertVecClose(d.embedding, normalised(dense(ids[i]!)), `input ${i}`));
    assert.equal(
      r.usage.prompt_tokens,
      ids.reduce((a, x) => a + x.length, 0),
    );
    const byIds = await client.embeddings.create({ model: 'tiny-embed', input: ids, encoding_format: 'float' });
    byIds.data.forEach((d, i) => assertVecClose(d.embedding, r.data[i]!.embedding, `token ids ${i}`, 1e-6));
    const single = await client.embeddings.create({ model: 'tiny-embed', input: [5, 6, 7, 8], encoding_format: 'float' });
    assertVecClose(single.data[0]!.embedding, normalised(dense([5, 6, 7, 8])), 'one token-id list');
  });

  it('dimensions truncates then renormalises (Matryoshka)', async () => {
    const ids = [11, 12, 13, 14, 15];
    const r = await client.embeddings.create({ model: 'tiny-embed', input: ids, dimensions: 16, encoding_format: 'float' });
    assert.equal(r.data[0]!.embedding.length, 16);
    assertVecClose(r.data[0]!.embedding, normalised(dense(ids), 16), 'dimensions 16');
    const full = await client.embeddings.create({
      model: 'tiny-embed',
      input: ids,
      dimensions: config.hiddenSize,
      encoding_format: 'float',
    });
    assert.equal(full.data[0]!.embedding.length, config.hiddenSize);
  });

  it('bad input is a 400 envelope and the server keeps serving', async () => {
    await expectBadRequest(client.embeddings.create({ model: 'tiny-embed', input: 'x', dimensions: config.hiddenSize + 1 }), 'dimensions');
    await expectBadRequest(client.embeddings.create({ model: 'tiny-embed', input: [] }), 'input');
    await expectBadRequest(client.embeddings.create({ model: 'tiny-embed', input: [[1, 2], [config.vocabSize]] }), 'input.1');
    await expectBadRequest(client.embeddings.create({ model: 'tiny-embed', input: Array.from({ length: 257 }, () => 'x') }), 'input');
    await expectBadRequest(
      client.embeddings.create({ model: 'tiny-embed', input: Array.from({ length: 65 }, (_, i) => i + 1) }),
      'input',
      'context_length_exceeded',
    );
    await expectBadRequest(
      client.embeddings.create({ model: 'tiny-embed', input: 'x', encoding_format: 'int8' as 'float' }),
      'encoding_format',
    );
    await assert.rejects(client.embeddings.create({ model: 'other-model', input: 'x' }), (e: unknown) => e instanceof OpenAI.NotFoundError);
    const ok = await client.embeddings.create({ model: 'tiny-embed', input: 'still serving', encoding_format: 'float' });
    assert.equal(ok.data.length, 1);
    assert.equal(stack.engine.stats().numFreeBlocks, stack.engine.stats().numTotalBlocks);
  });

  it('a server configured for mean pooling averages every token', async () => {
    const meanServer = await createServer({ engine: stack.engine, frontend: stack.frontend, embeddingPooling: 'mean' });
    try {
      const meanUrl = (await meanServer.listen({ port: 0 })).url;
      const c = new OpenAI({ baseURL: `${meanUrl}/v1`, apiKey: 'sk-any', maxRetries: 0 });
      const ids = [3, 30, 300, 33, 303, 9];
      const r = await c.embeddings.create({ model: 'tiny-embed', input: ids, encoding_format: 'float' });
      assertVecClose(r.data[0]!.embedding, normalised(dense(ids, 'mean')), 'mean pooling');
    } finally {
      await meanServer.app.close(); // the engine belongs to the main server
    }
  });
});

describe('pooling declared by a sentence-transformers layout', () => {
  it('modules.json + Pooling config picks last or mean; nothing declared falls back to last', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-st-'));
    try {
      assert.equal(declaredPooling(dir), null);
      assert.equal(resolvePooling('auto', dir), 'last');
      mkdirSync(join(dir, 'pool'));
      writeFileSync(
        join(dir, 'modules.json'),
        JSON.stringify([
          { idx: 0, path: '', type: 'sentence_transformers.models.Transformer' },
          { idx: 1, path: 'pool', type: 'sentence_transformers.models.Pooling' },
        ]),
      );
      writeFileSync(
        join(dir, 'pool', 'config.json'),
        JSON.stringify({ word_embedding_dimension: 64, pooling_mode_mean_tokens: true, pooling_mode_lasttoken: false }),
      );
      assert.equal(resolvePooling('auto', dir), 'mean');
      writeFileSync(join(dir, 'pool', 'config.json'), JSON.stringify({ pooling_mode_mean_tokens: false, pooling_mode_lasttoken: true }));
      assert.equal(declaredPooling(dir), 'last');
      assert.equal(resolvePooling('mean', dir), 'mean', 'an explicit --pooling wins');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
