// End to end: a seeded tiny random Llama written to a temp dir, opened with the real AsyncEngine,
// tokenizer and chat template, served over HTTP and driven by the official openai client.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';
import { until } from '../server/helpers.js';

describe('server e2e on a tiny random model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-e2e-'));
  let stack: ModelStack;
  let server: TokenmillServer;
  let client: OpenAI;
  let url: string;

  before(async () => {
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 7 });
    const metrics = new ServerMetrics({ modelName: 'tiny', usdPerHour: 2 });
    stack = await openModelStack({
      dir,
      modelId: 'tiny',
      device: 'reference',
      kvCacheBytes: 4 * 1024 * 1024,
      usdPerHour: 2,
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

  it('chat: greedy is deterministic, streams the same text, reports usage and cost', async () => {
    const req = { model: 'tiny', messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 12, temperature: 0 };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
    assert.ok(['stop', 'length'].includes(a.choices[0]!.finish_reason));
    assert.ok(a.usage!.prompt_tokens > 0);
    assert.ok(a.usage!.completion_tokens > 0 && a.usage!.completion_tokens <= 12);
    assert.ok((a.usage as unknown as { cost_usd: number }).cost_usd > 0);
    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, a.choices[0]!.message.content);
    assert.equal(usage!.completion_tokens, a.usage!.completion_tokens);
  });

  it('completions: seeded sampling is reproducible; n=2; logprobs', async () => {
    const req = { model: 'tiny', prompt: 'The engine reads', max_tokens: 8, temperature: 1, seed: 1234, n: 2, logprobs: 2 };
    const a = await client.completions.create(req);
    const b = await client.completions.create(req);
    assert.deepEqual(
      a.choices.map((c) => c.text),
      b.choices.map((c) => c.text),
    );
    assert.equal(a.choices.length, 2);
    const lp = a.choices[0]!.logprobs!;
    assert.equal(lp.tokens!.length, lp.token_logprobs!.length);
    assert.ok(lp.token_logprobs!.every((x) => x <= 0));
  });

  it('context overflow is a 400 naming the numbers', async () => {
    await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'hello', max_tokens: 100_000 }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError);
      assert.equal(e.code, 'context_length_exceeded');
      assert.match(e.message, /maximum context length is \d+ tokens/);
      return true;
    });
  });

  it('a disconnecting client frees its KV blocks; the request counts as aborted', async () => {
    const ac = new AbortController();
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      signal: ac.signal,
      body: JSON.stringify({ prompt: 'Once', max_tokens: 200, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const freed = (): boolean => {
      const s = stack.engine.stats();
      return s.numRunning === 0 && s.numFreeBlocks === s.numTotalBlocks;
    };
    await until(freed, 'the aborted request to free its KV blocks');
    const stats = stack.engine.stats();
    assert.equal(stats.numRunning, 0);
    assert.equal(stats.numWaiting, 0);
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer x' } })).text();
    assert.match(text, /tokenmill_request_success_total\{model_name="tiny",finished_reason="(abort|length)"\} [1-9]/);
  });

  it('metrics reflect the engine: queue time, prefix cache, tokens', async () => {
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer x' } })).text();
    assert.match(text, /tokenmill_generation_tokens_total\{model_name="tiny"\} [1-9]/);
    assert.match(text, /tokenmill_request_queue_time_seconds_count\{model_name="tiny"\} [1-9]/);
    assert.match(text, /tokenmill_prefix_cache_queries_total\{model_name="tiny"\} [1-9]/);
    assert.match(text, /tokenmill_usd_per_1k_output_tokens\{model_name="tiny",basis="busy"\} [0-9.e-]+/);
  });
});
