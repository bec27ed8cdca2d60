// The official openai client against a live server over the real engine (a tiny byte-vocabulary
// model, test/server/real-engine.ts): chat and completions, streamed and not, usage and cost, stop,
// n, seeded determinism, logprobs, and typed errors. Expected texts come from generate() on the same
// weights, so the server's text path is checked against the engine's.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { BOS, FakeFrontend } from './byte-frontend.js';
import { startRealLive, type RealLive } from './helpers.js';
import { bytesOf, greedy, greedyText } from './real-engine.js';

const CHAT_HI = bytesOf('<user>hi\n<assistant>');

describe('openai client vs tokenmill server (real engine, tiny model)', () => {
  let live: RealLive;
  before(async () => {
    live = await startRealLive();
  });
  after(() => live.close());

  it('lists and retrieves models', async () => {
    const list = await live.client.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['tiny-model'],
    );
    assert.equal(list.data[0]!.object, 'model');
    const m = await live.client.models.retrieve('tiny-model');
    assert.equal(m.id, 'tiny-model');
    await assert.rejects(live.client.models.retrieve('nope'), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it('chat completion, non-streaming, with usage and cost', async () => {
    const raw = await live.client.chat.completions
      .create({ model: 'tiny-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, temperature: 0 })
      .withResponse();
    const r = raw.data;
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(Number.isInteger(r.created), true);
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.equal(r.choices[0]!.message.content, await greedyText(CHAT_HI, 5));
    assert.equal(r.choices[0]!.finish_reason, 'length');
    // '<user>hi\n<assistant>' is 20 bytes in the fake byte tokenizer.
    assert.equal(r.usage!.prompt_tokens, 20);
    assert.equal(r.usage!.completion_tokens, 5);
    assert.equal(r.usage!.total_tokens, 25);
    assert.equal(r.usage!.prompt_tokens_details!.cached_tokens, 0);
    const cost = (r.usage as unknown as { cost_usd: number }).cost_usd;
    assert.ok(cost > 0);
    assert.equal(Number(raw.response.headers.get('x-tokenmill-cost-usd')), Number(cost.toFixed(9)));
    assert.ok(raw.response.headers.get('x-request-id'));
    assert.equal(raw.response.headers.get('x-tokenmill-usd-per-hour'), '1');
  });

  it('completion, non-streaming, from a string and from token ids', async () => {
    const r = await live.client.completions.create({ model: 'tiny-model', prompt: 'abc', max_tokens: 4, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.choices[0]!.text, await greedyText([BOS, ...bytesOf('abc')], 4));
    assert.equal(r.usage!.prompt_tokens, 4); // BOS + 3 bytes
    const r2 = await live.client.completions.create({ model: 'tiny-model', prompt: [97, 98], max_tokens: 2, temperature: 0 });
    assert.equal(r2.usage!.prompt_tokens, 2);
  });

  it('completions default to 16 tokens', async () => {
    const r = await live.client.completions.create({ model: 'tiny-model', prompt: 'x', temperature: 0 });
    assert.equal(r.usage!.completion_tokens, 16);
  });

  it('chat streaming: role first, finish_reason last, usage chunk with cost', async () => {
    const stream = await live.client.chat.completions.create({
      model: 'tiny-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 6,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    assert.equal(withChoices[0]!.choices[0]!.delta.role, 'assistant');
    assert.equal(withChoices.at(-1)!.choices[0]!.finish_reason, 'length');
    for (const c of withChoices.slice(0, -1)) assert.equal(c.choices[0]!.finish_reason, null);
    assert.equal(withChoices.map((c) => c.choices[0]!.delta.content ?? '').join(''), await greedyText(CHAT_HI, 6));
    for (const c of withChoices) assert.equal(c.usage, null);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage!.completion_tokens, 6);
    assert.ok((last.usage as unknown as { cost_usd: number }).cost_usd > 0);
    assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  });

  it('chat stream helper (runner) accepts our chunks', async () => {
    const runner = live.client.chat.completions.stream({
      model: 'tiny-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 3,
      temperature: 0,
    });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0]!.message.content, await greedyText(CHAT_HI, 3));
    assert.equal(final.choices[0]!.finish_reason, 'length');
  });

  it('completions streaming concatenates to the non-streamed text', async () => {
    const stream = await live.client.completions.create({ model: 'tiny-model', prompt: 'q', max_tokens: 7, temperature: 0, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      assert.equal(c.object, 'text_completion');
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, await greedyText([BOS, ...bytesOf('q')], 7));
    assert.equal(finish, 'length');
  });

  it('stop strings cut the text and finish with stop', async () => {
    const full = await greedyText(CHAT_HI, 30);
    const stop = full.slice(10, 12);
    const r = await live.client.chat.completions.create({
      model: 'tiny-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 30,
      temperature: 0,
      stop: [stop],
    });
    assert.equal(r.choices[0]!.message.content, full.slice(0, full.indexOf(stop)));
    assert.equal(r.choices[0]!.finish_reason, 'stop');
  });

  it('seeded sampling is deterministic; n gives n choices', async () => {
    // ignore_eos (vLLM extension): exactly 12 tokens per choice.
    const body = {
      model: 'tiny-model',
      messages: [{ role: 'user' as const, content: 'hi' }],
      max_tokens: 12,
      temperature: 0.9,
      seed: 42,
      n: 3,
      ignore_eos: true,
    };
    const ask = () => live.client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const [a, b] = await Promise.all([ask(), ask()]);
    assert.equal(a.choices.length, 3);
    assert.deepEqual(
      a.choices.map((c) => c.index),
      [0, 1, 2],
    );
    assert.deepEqual(
      a.choices.map((c) => c.message.content),
      b.choices.map((c) => c.message.content),
    );
    assert.notEqual(a.choices[0]!.message.content, a.choices[1]!.message.content);
    assert.equal(a.usage!.completion_tokens, 36);
  });

  it('passes sampling params through to the engine', async () => {
    await live.client.chat.completions.create({
      model: 'tiny-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_completion_tokens: 3,
      temperature: 0.5,
      top_p: 0.9,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      logit_bias: { '97': 5 },
      seed: 7,
      // @ts-expect-error: vLLM-style extensions
      top_k: 40,
      min_p: 0.05,
      repetition_penalty: 1.1,
      priority: -3,
      store: true,
      metadata: { a: 'b' },
      service_tier: 'auto',
      parallel_tool_calls: false,
      user: 'u',
    });
    assert.equal(live.engine.requests.at(-1)!.priority, -3);
    const p = live.engine.requests.at(-1)!.params;
    assert.equal(p.maxTokens, 3);
    assert.equal(p.temperature, 0.5);
    assert.equal(p.topP, 0.9);
    assert.equal(p.topK, 40);
    assert.equal(p.minP, 0.05);
    assert.equal(p.repetitionPenalty, 1.1);
    assert.equal(p.presencePenalty, 0.5);
    assert.equal(p.frequencyPenalty, 0.25);
    assert.equal(p.logitBias.get(97), 5);
    assert.equal(p.seed, 7);
  });

  it('chat logprobs and completions logprobs have the OpenAI layouts', async () => {
    const r = await live.client.chat.completions.create({
      model: 'tiny-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2,
    });
    const content = r.choices[0]!.logprobs!.content!;
    assert.equal(content.length, 2);
    const frontend = new FakeFrontend();
    const firstId = (await greedy(CHAT_HI, 1)).ids[0]!;
    assert.equal(content[0]!.token, await frontend.tokenText(firstId));
    assert.deepEqual(content[0]!.bytes, await frontend.tokenBytes(firstId));
    assert.equal(content[0]!.top_logprobs.length, 2);
    const c = await live.client.completions.create({ model: 'tiny-model', prompt: 'a', max_tokens: 3, temperature: 0, logprobs: 1 });
    const lp = c.choices[0]!.logprobs!;
    const want = await Promise.all((await greedy([BOS, ...bytesOf('a')], 3)).ids.map((id) => frontend.tokenText(id)));
    assert.deepEqual(lp.tokens, want);
    assert.deepEqual(lp.text_offset, [0, 1, 2]);
    assert.equal(lp.token_logprobs!.length, 3);
    assert.deepEqual(Object.keys(lp.top_logprobs![0]!), [want[0]]);
  });

  it('errors surface as typed client errors with the envelope', async () => {
    await assert.rejects(
      live.client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
    );
    await assert.rejects(
      live.client.chat.completions.create({ model: 'tiny-model', messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.code, 'context_length_exceeded');
        assert.match(e.message, /maximum context length is 256 tokens/);
        assert.match(e.message, /1019 tokens \(19 in the messages, 1000 for the completion\)/);
        return true;
      },
    );
    await assert.rejects(
      live.client.chat.completions.create({
        model: 'tiny-model',
        messages: [{ role: 'user', content: 'x' }],
        tools: [{ type: 'function', function: { name: 'f' } }],
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'unsupported_feature' && e.param === 'tools',
    );
    await assert.rejects(
      live.client.chat.completions.create({
        model: 'tiny-model',
        messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_object' },
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'unsupported_feature' && e.param === 'response_format',
    );
    await assert.rejects(
      live.client.chat.completions.create({
        model: 'tiny-model',
        messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'xml' } as never,
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_request' && e.param === 'response_format.type',
    );
    await assert.rejects(
      live.client.chat.completions.create({ model: 'tiny-model', messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_request' && e.param === 'temperature',
    );
  });
});

describe('completions prompt forms', () => {
  let live: RealLive;
  before(async () => {
    live = await startRealLive();
  });
  after(() => live.close());

  it('accepts one-element prompt lists and token ids; checks ids against the vocabulary', async () => {
    const a = await live.client.completions.create({ model: 'tiny-model', prompt: ['ab'], max_tokens: 1 });
    assert.equal(a.usage!.prompt_tokens, 3);
    const b = await live.client.completions.create({ model: 'tiny-model', prompt: [[97, 98]], max_tokens: 1 });
    assert.equal(b.usage!.prompt_tokens, 2);
    await assert.rejects(
      live.client.completions.create({ model: 'tiny-model', prompt: [999], max_tokens: 1 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /outside the vocabulary/.test(e.message),
    );
  });

  it('a list of prompts gives prompts x n choices, prompt-major, with summed usage', async () => {
    const r = await live.client.completions.create({ model: 'tiny-model', prompt: ['ab', 'cde'], n: 2, max_tokens: 3, temperature: 0 });
    assert.deepEqual(
      r.choices.map((c) => c.index),
      [0, 1, 2, 3],
    );
    const [ab, cde] = [await greedyText([BOS, ...bytesOf('ab')], 3), await greedyText([BOS, ...bytesOf('cde')], 3)];
    assert.deepEqual(
      r.choices.map((c) => c.text),
      [ab, ab, cde, cde],
    );
    assert.ok(r.choices.every((c) => c.finish_reason === 'length'));
    assert.equal(r.usage!.prompt_tokens, 3 + 4);
    assert.equal(r.usage!.completion_tokens, 12);
    const ids = live.engine.requests.slice(-2).map((q) => q.promptTokenIds.length);
    assert.deepEqual(ids, [3, 4]);
    const t = await live.client.completions.create({ model: 'tiny-model', prompt: [[97], [98, 99]], max_tokens: 2, temperature: 0 });
    assert.equal(t.choices.length, 2);
    await assert.rejects(
      live.client.completions.create({ model: 'tiny-model', prompt: ['a', 'x'.repeat(300)], max_tokens: 2 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded',
    );
  });

  it('streams a list of prompts: each choice starts once and finishes last', async () => {
    const stream = await live.client.completions.create({
      model: 'tiny-model',
      prompt: ['a', 'b', 'c'],
      max_tokens: 4,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = new Map<number, string>();
    const finish = new Map<number, string | null>();
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        assert.equal(finish.get(ch.index) ?? null, null, 'no chunk after finish_reason');
        text.set(ch.index, (text.get(ch.index) ?? '') + ch.text);
        finish.set(ch.index, ch.finish_reason);
      }
    }
    assert.deepEqual([...text.keys()].sort(), [0, 1, 2]);
    for (const [i, p] of ['a', 'b', 'c'].entries()) assert.equal(text.get(i), await greedyText([BOS, ...bytesOf(p)], 4));
    assert.ok([...finish.values()].every((f) => f === 'length'));
    assert.equal(usage!.completion_tokens, 12);
    assert.equal(usage!.prompt_tokens, 6);
  });
});
