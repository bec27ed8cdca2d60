// The official openai client against a live server over the fake engine: chat and completions,
// streamed and not, usage and cost, stop, n, seeded determinism, logprobs, and typed errors.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { GREEDY_TEXT } from './fakes.js';
import { startLive, type Live } from './helpers.js';

describe('openai client vs tokenmill server (fake engine)', () => {
  let live: Live;
  before(async () => {
    live = await startLive();
  });
  after(() => live.close());

  it('lists and retrieves models', async () => {
    const list = await live.client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), ['fake-model']);
    assert.equal(list.data[0]!.object, 'model');
    const m = await live.client.models.retrieve('fake-model');
    assert.equal(m.id, 'fake-model');
    await assert.rejects(live.client.models.retrieve('nope'), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it('chat completion, non-streaming, with usage and cost', async () => {
    const raw = await live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, temperature: 0 }).withResponse();
    const r = raw.data;
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(Number.isInteger(r.created), true);
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.equal(r.choices[0]!.message.content, GREEDY_TEXT.slice(0, 5));
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
    const r = await live.client.completions.create({ model: 'fake-model', prompt: 'abc', max_tokens: 4, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.match(r.id, /^cmpl-/);
    assert.equal(r.choices[0]!.text, GREEDY_TEXT.slice(0, 4));
    assert.equal(r.usage!.prompt_tokens, 4); // BOS + 3 bytes
    const r2 = await live.client.completions.create({ model: 'fake-model', prompt: [97, 98], max_tokens: 2, temperature: 0 });
    assert.equal(r2.usage!.prompt_tokens, 2);
  });

  it('completions default to 16 tokens', async () => {
    const r = await live.client.completions.create({ model: 'fake-model', prompt: 'x', temperature: 0 });
    assert.equal(r.usage!.completion_tokens, 16);
  });

  it('chat streaming: role first, finish_reason last, usage chunk with cost', async () => {
    const stream = await live.client.chat.completions.create({
      model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    assert.equal(withChoices[0]!.choices[0]!.delta.role, 'assistant');
    assert.equal(withChoices.at(-1)!.choices[0]!.finish_reason, 'length');
    for (const c of withChoices.slice(0, -1)) assert.equal(c.choices[0]!.finish_reason, null);
    assert.equal(withChoices.map((c) => c.choices[0]!.delta.content ?? '').join(''), GREEDY_TEXT.slice(0, 6));
    for (const c of withChoices) assert.equal(c.usage, null);
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage!.completion_tokens, 6);
    assert.ok((last.usage as unknown as { cost_usd: number }).cost_usd > 0);
    assert.equal(new Set(chunks.map((c) => c.created)).size, 1);
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
  });

  it('chat stream helper (runner) accepts our chunks', async () => {
    const runner = live.client.chat.completions.stream({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, temperature: 0 });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0]!.message.content, GREEDY_TEXT.slice(0, 3));
    assert.equal(final.choices[0]!.finish_reason, 'length');
  });

  it('completions streaming concatenates to the non-streamed text', async () => {
    const stream = await live.client.completions.create({ model: 'fake-model', prompt: 'q', max_tokens: 7, temperature: 0, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const c of stream) {
      assert.equal(c.object, 'text_completion');
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, GREEDY_TEXT.slice(0, 7));
    assert.equal(finish, 'length');
  });

  it('stop strings cut the text and finish with stop', async () => {
    const r = await live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 50, temperature: 0, stop: ['grinds'] });
    assert.equal(r.choices[0]!.message.content, 'the mill ');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
  });

  it('seeded sampling is deterministic; n gives n choices', async () => {
    const ask = () => live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 12, temperature: 0.9, seed: 42, n: 3 });
    const [a, b] = await Promise.all([ask(), ask()]);
    assert.equal(a.choices.length, 3);
    assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
    assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
    assert.notEqual(a.choices[0]!.message.content, a.choices[1]!.message.content);
    assert.equal(a.usage!.completion_tokens, 36);
  });

  it('passes sampling params through to the engine', async () => {
    await live.client.chat.completions.create({
      model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 3, temperature: 0.5, top_p: 0.9,
      presence_penalty: 0.5, frequency_penalty: 0.25, logit_bias: { '97': 5 }, seed: 7,
      // @ts-expect-error: vLLM-style extensions
      top_k: 40, min_p: 0.05, repetition_penalty: 1.1, priority: -3, store: true, metadata: { a: 'b' }, service_tier: 'auto', parallel_tool_calls: false, user: 'u',
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
    const r = await live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = r.choices[0]!.logprobs!.content!;
    assert.equal(content.length, 2);
    assert.equal(content[0]!.token, 't');
    assert.deepEqual(content[0]!.bytes, [116]);
    assert.equal(content[0]!.top_logprobs.length, 2);
    const c = await live.client.completions.create({ model: 'fake-model', prompt: 'a', max_tokens: 3, temperature: 0, logprobs: 1 });
    const lp = c.choices[0]!.logprobs!;
    assert.deepEqual(lp.tokens, ['t', 'h', 'e']);
    assert.deepEqual(lp.text_offset, [0, 1, 2]);
    assert.equal(lp.token_logprobs!.length, 3);
    assert.deepEqual(Object.keys(lp.top_logprobs![0]!), ['t']);
  });

  it('errors surface as typed client errors with the envelope', async () => {
    await assert.rejects(
      live.client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
    );
    await assert.rejects(
      live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], max_tokens: 1000 }),
      (e: unknown) => {
        assert.ok(e instanceof OpenAI.BadRequestError);
        assert.equal(e.code, 'context_length_exceeded');
        assert.match(e.message, /maximum context length is 256 tokens/);
        assert.match(e.message, /1019 tokens \(19 in the messages, 1000 for the completion\)/);
        return true;
      },
    );
    await assert.rejects(
      live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'unsupported_feature' && e.param === 'tools',
    );
    await assert.rejects(
      live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } as never }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_request' && e.param === 'response_format.type',
    );
    await assert.rejects(
      live.client.chat.completions.create({ model: 'fake-model', messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_request' && e.param === 'temperature',
    );
  });
});

describe('completions prompt forms', () => {
  let live: Live;
  before(async () => {
    live = await startLive();
  });
  after(() => live.close());

  it('accepts one-element prompt lists and token ids; checks ids against the vocabulary', async () => {
    const a = await live.client.completions.create({ model: 'fake-model', prompt: ['ab'], max_tokens: 1 });
    assert.equal(a.usage!.prompt_tokens, 3);
    const b = await live.client.completions.create({ model: 'fake-model', prompt: [[97, 98]], max_tokens: 1 });
    assert.equal(b.usage!.prompt_tokens, 2);
    await assert.rejects(live.client.completions.create({ model: 'fake-model', prompt: [999], max_tokens: 1 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && /outside the vocabulary/.test(e.message));
  });

  it('a list of prompts gives prompts x n choices, prompt-major, with summed usage', async () => {
    const r = await live.client.completions.create({ model: 'fake-model', prompt: ['ab', 'cde'], n: 2, max_tokens: 3, temperature: 0 });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
    assert.ok(r.choices.every((c) => c.text === 'the' && c.finish_reason === 'length'));
    assert.equal(r.usage!.prompt_tokens, 3 + 4);
    assert.equal(r.usage!.completion_tokens, 12);
    const ids = live.engine.requests.slice(-2).map((q) => q.promptTokenIds.length);
    assert.deepEqual(ids, [3, 4]);
    const t = await live.client.completions.create({ model: 'fake-model', prompt: [[97], [98, 99]], max_tokens: 2, temperature: 0 });
    assert.equal(t.choices.length, 2);
    await assert.rejects(live.client.completions.create({ model: 'fake-model', prompt: ['a', 'x'.repeat(300)], max_tokens: 2 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded');
  });

  it('streams a list of prompts: each choice starts once and finishes last', async () => {
    const stream = await live.client.completions.create({ model: 'fake-model', prompt: ['a', 'b', 'c'], max_tokens: 4, temperature: 0, stream: true, stream_options: { include_usage: true } });
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
    assert.ok([...text.values()].every((t) => t === 'the '));
    assert.ok([...finish.values()].every((f) => f === 'length'));
    assert.equal(usage!.completion_tokens, 12);
    assert.equal(usage!.prompt_tokens, 6);
  });
});
