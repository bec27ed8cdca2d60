// /v1/responses (stateless) through the official openai client against a live server on the real
// Engine (a seeded tiny random Llama with the synthetic tokenizer and its chat template): text and
// message-array input with instructions, the same greedy text as the chat route, usage and cost,
// max_output_tokens -> incomplete, responses.stream's exact event sequence (and the raw SSE event
// names), stored-state features and bad items as 400 envelopes; an engine fault mid-stream (fake
// engine) as an `error` event.
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
import { rawSse, startRealLive } from './helpers.js';
import { ModelFault, TINY_MODEL_ID } from './real-engine.js';

type Usage = OpenAI.Responses.ResponseUsage & { cost_usd: number };

async function expectBadRequest(p: Promise<unknown>, param: string, code?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `expected a 400, got ${String(e)}`);
    const err = e.error as { param?: string | null; code?: string | null; message?: string };
    assert.equal(err.param, param, err.message);
    if (code !== undefined) assert.equal(err.code, code, err.message);
    return true;
  });
}

describe('/v1/responses on a tiny random Llama (real engine, openai client)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-resp-'));
  let stack: ModelStack;
  let server: TokenmillServer;
  let client: OpenAI;
  let url: string;

  before(async () => {
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 5 });
    const metrics = new ServerMetrics({ modelName: 'tiny', usdPerHour: 2 });
    stack = await openModelStack({ dir, modelId: 'tiny', kvCacheBytes: 4 * 1024 * 1024, usdPerHour: 2, observer: metrics });
    server = await createServer({ engine: stack.engine, frontend: stack.frontend, metrics });
    url = (await server.listen({ port: 0 })).url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
  });
  after(async () => {
    await server?.close();
    await stack?.frontend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("text input: a message item with the chat route's greedy text, usage and cost", async () => {
    const raw = await client.responses
      .create({ model: 'tiny', input: 'Once upon a time', max_output_tokens: 12, temperature: 0, store: false })
      .withResponse();
    const r = raw.data;
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_/);
    assert.ok(Number.isInteger(r.created_at));
    assert.equal(r.model, 'tiny');
    assert.ok(r.status === 'completed' || r.status === 'incomplete');
    assert.equal(r.error, null);
    assert.equal(r.output.length, 1);
    const msg = r.output[0]!;
    assert.equal(msg.type, 'message');
    if (msg.type !== 'message') return;
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.content[0]!.type, 'output_text');
    const chat = await client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_completion_tokens: 12,
      temperature: 0,
    });
    assert.equal(r.output_text, chat.choices[0]!.message.content, 'the same pipeline as chat');
    const u = r.usage as Usage;
    assert.equal(u.input_tokens, chat.usage!.prompt_tokens);
    assert.equal(u.output_tokens, chat.usage!.completion_tokens);
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.equal(u.output_tokens_details.reasoning_tokens, 0);
    assert.equal(typeof u.input_tokens_details.cached_tokens, 'number');
    assert.ok(u.cost_usd > 0);
    assert.equal(Number(raw.response.headers.get('x-tokenmill-cost-usd')), Number(u.cost_usd.toFixed(9)));
    if (r.status === 'incomplete') assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
  });

  it('message-array input with instructions equals the chat request with a system message', async () => {
    const r = await client.responses.create({
      model: 'tiny',
      instructions: 'You are terse.',
      temperature: 0,
      max_output_tokens: 10,
      input: [
        { role: 'user', content: 'hello' },
        {
          type: 'message',
          role: 'assistant',
          content: [{ type: 'output_text', text: 'hi there', annotations: [] }],
          id: 'msg_prev',
          status: 'completed',
        },
        { role: 'developer', content: 'Be kind.' },
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'and' },
            { type: 'input_text', text: 'more?' },
          ],
        },
        { type: 'reasoning', id: 'rs_prev', summary: [] },
      ],
    });
    const chat = await client.chat.completions.create({
      model: 'tiny',
      temperature: 0,
      max_completion_tokens: 10,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'hello' },
        { role: 'assistant', content: 'hi there' },
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'and\nmore?' },
      ],
    });
    assert.equal(r.output_text, chat.choices[0]!.message.content);
    assert.equal(r.instructions, 'You are terse.');
    assert.equal((r.usage as Usage).input_tokens, chat.usage!.prompt_tokens);
  });

  it('max_output_tokens reached: status incomplete with reason max_output_tokens', async () => {
    const r = await client.responses.create({
      model: 'tiny',
      input: 'Tell a long story',
      max_output_tokens: 3,
      temperature: 0,
      ignore_eos: true,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    assert.equal((r.usage as Usage).output_tokens, 3);
    assert.equal(r.status, 'incomplete');
    assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(r.output[0]!.type === 'message' && r.output[0].status, 'incomplete');
    assert.equal(r.max_output_tokens, 3);
    const stream = client.responses.stream({
      model: 'tiny',
      input: 'Tell a long story',
      max_output_tokens: 3,
      temperature: 0,
      ignore_eos: true,
    } as Parameters<OpenAI['responses']['stream']>[0]);
    const types: string[] = [];
    for await (const e of stream) types.push(e.type);
    assert.equal(types.at(-1), 'response.incomplete');
    assert.equal((await stream.finalResponse()).status, 'incomplete');
  });

  it('responses.stream: the exact event sequence, joined deltas == final text == non-streamed text', async () => {
    const req = { model: 'tiny', input: 'The engine reads', max_output_tokens: 16, temperature: 0 } as const;
    const whole = await client.responses.create(req);
    const stream = client.responses.stream(req);
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    let deltas = '';
    stream.on('response.output_text.delta', (e) => (deltas += e.delta));
    for await (const e of stream) events.push(e);
    const final = await stream.finalResponse();
    assert.equal(final.output_text, whole.output_text);
    assert.equal(deltas, whole.output_text);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
      'sequence numbers 0..n-1',
    );
    const types = events.map((e) => e.type);
    const numDeltas = types.filter((t) => t === 'response.output_text.delta').length;
    assert.ok(numDeltas >= 1);
    const done = whole.status === 'completed' ? 'response.completed' : 'response.incomplete';
    assert.deepEqual(types, [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array<string>(numDeltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      done,
    ]);
    const created = events[0] as OpenAI.Responses.ResponseCreatedEvent;
    assert.equal(created.response.status, 'in_progress');
    assert.deepEqual(created.response.output, []);
    const last = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    assert.equal(last.response.output_text ?? final.output_text, final.output_text);
    assert.equal((last.response.usage as Usage).output_tokens, (whole.usage as Usage).output_tokens);
    assert.ok((last.response.usage as Usage).cost_usd > 0);
    const itemDone = events.find((e) => e.type === 'response.output_item.done') as OpenAI.Responses.ResponseOutputItemDoneEvent;
    assert.equal(itemDone.item.type, 'message');
    // On the wire: `event: <type>` lines, no [DONE].
    const wire = await rawSse(`${url}/v1/responses`, { ...req, stream: true });
    assert.equal(wire.status, 200);
    assert.match(wire.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.deepEqual(
      wire.events.map((d) => (JSON.parse(d) as { type: string }).type),
      types,
    );
    assert.ok(!wire.events.includes('[DONE]'));
  });

  it('fields without effect and unknown fields are answered and named in x-tokenmill-ignored-fields', async () => {
    const quiet = await client.responses.create({ model: 'tiny', input: 'x', max_output_tokens: 2, store: false }).withResponse();
    assert.equal(quiet.response.headers.get('x-tokenmill-ignored-fields'), null);
    const r = await client.responses
      .create({
        model: 'tiny',
        input: 'x',
        max_output_tokens: 2,
        store: true,
        include: ['reasoning.encrypted_content'],
        reasoning: { effort: 'high', summary: 'auto' },
        text: { verbosity: 'low' },
        prompt_cache_key: 'k',
        zz_new_field: 1,
      } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
      .withResponse();
    assert.equal(
      r.response.headers.get('x-tokenmill-ignored-fields'),
      'store,reasoning.effort,reasoning.summary,text.verbosity,include,prompt_cache_key,zz_new_field',
    );
    assert.equal(r.data.object, 'response');
  });

  it('stored-state features, unsupported items and tools are 400 envelopes; the server keeps serving', async () => {
    const base = { model: 'tiny', input: 'x', max_output_tokens: 2 };
    await expectBadRequest(
      client.responses.create({ ...base, previous_response_id: 'resp_123' }),
      'previous_response_id',
      'unsupported_feature',
    );
    await expectBadRequest(client.responses.create({ ...base, conversation: 'conv_1' }), 'conversation');
    await expectBadRequest(client.responses.create({ ...base, background: true }), 'background');
    await expectBadRequest(client.responses.create({ ...base, input: [{ type: 'item_reference', id: 'msg_1' }] }), 'input.0');
    await expectBadRequest(
      client.responses.create({
        ...base,
        input: [
          { role: 'user', content: 'a' },
          { type: 'web_search_call', id: 'ws', status: 'completed', action: { type: 'search', query: 'q' } },
        ] as OpenAI.Responses.ResponseInput,
      }),
      'input.1.type',
    );
    await expectBadRequest(
      client.responses.create({
        ...base,
        input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png', detail: 'auto' }] }],
      }),
      'input.0.content.0',
    );
    await expectBadRequest(
      client.responses.create({
        ...base,
        input: [
          { role: 'user', content: 'a' },
          { type: 'function_call_output', output: 'x' } as unknown as OpenAI.Responses.ResponseInputItem,
        ],
      }),
      'input.1.call_id',
    );
    await expectBadRequest(client.responses.create({ ...base, input: [] }), 'input');
    await expectBadRequest(client.responses.create({ ...base, tools: [{ type: 'web_search' }] }), 'tools.0.type');
    await expectBadRequest(client.responses.create({ ...base, max_output_tokens: 100_000 }), 'input', 'context_length_exceeded');
    await expectBadRequest(client.responses.create({ ...base, temperature: 3 }), 'temperature');
    await expectBadRequest(client.responses.retrieve('resp_123'), 'response_id', 'unsupported_feature');
    await expectBadRequest(client.responses.delete('resp_123'), 'response_id');
    await expectBadRequest(
      client.responses.create({ ...base, include: ['message.output_text.logprobs'] }),
      'include',
      'unsupported_feature',
    );
    await assert.rejects(client.responses.create({ ...base, model: 'nope' }), (e: unknown) => e instanceof OpenAI.NotFoundError);
    const ok = await client.responses.create(base);
    assert.equal(ok.object, 'response');
    assert.equal(stack.engine.stats().numFreeBlocks, stack.engine.stats().numTotalBlocks);
  });
});

describe('/v1/responses streaming failures (real engine, fault injected in the model)', () => {
  it('an engine fault after the stream opened is an `error` event; before it, an HTTP error', async () => {
    // One request: its prefill and two decode steps run, the 4th forward pass fails.
    const live = await startRealLive({ engine: { fault: new ModelFault(4) } });
    try {
      const body = { model: TINY_MODEL_ID, input: 'hi', max_output_tokens: 10, temperature: 0, stream: true };
      const wire = await rawSse(`${live.url}/v1/responses`, body);
      assert.equal(wire.status, 200);
      const evs = wire.events.map((d) => JSON.parse(d) as { type: string; code?: string; message?: string; sequence_number: number });
      assert.equal(evs[0]!.type, 'response.created');
      const last = evs.at(-1)!;
      assert.equal(last.type, 'error');
      assert.equal(last.code, 'cuda_error', "the fatal fault's own code, as the chat route reports it");
      assert.ok(last.message && last.message.length > 0);
      assert.equal(last.sequence_number, evs.length - 1);
      assert.ok(!evs.some((e) => e.type === 'response.completed'));
      // The engine is dead now: a new request is refused before any event.
      await assert.rejects(
        live.client.responses.create({ model: TINY_MODEL_ID, input: 'hi', stream: true }),
        (e: unknown) => e instanceof OpenAI.InternalServerError && /engine is dead/.test(e.message),
      );
    } finally {
      await live.close();
    }
  });
});

describe('/v1/responses through @langchain/openai (useResponsesApi)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-resp-lc-'));
  let stack: ModelStack;
  let server: TokenmillServer;
  let url: string;

  before(async () => {
    writeRandomModel(dir, MODEL_PRESETS['tiny-llama']!.config, { seed: 5 });
    stack = await openModelStack({ dir, modelId: 'tiny', kvCacheBytes: 4 * 1024 * 1024, usdPerHour: 2 });
    server = await createServer({ engine: stack.engine, frontend: stack.frontend });
    url = (await server.listen({ port: 0 })).url;
  });
  after(async () => {
    await server?.close();
    await stack?.frontend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('invoke and stream give the same text as the openai client, with usage', async () => {
    const { ChatOpenAI } = await import('@langchain/openai');
    const llm = new ChatOpenAI({
      model: 'tiny',
      apiKey: 'sk-any',
      configuration: { baseURL: `${url}/v1` },
      useResponsesApi: true,
      temperature: 0,
      maxTokens: 10,
      maxRetries: 0,
    });
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Once upon a time' },
    ];
    const msg = await llm.invoke(messages);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
    const ref = await client.responses.create({
      model: 'tiny',
      input: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Once upon a time' },
      ],
      temperature: 0,
      max_output_tokens: 10,
    });
    assert.equal(msg.text, ref.output_text);
    assert.equal(msg.usage_metadata?.output_tokens, ref.usage!.output_tokens);
    let streamed = '';
    for await (const chunk of await llm.stream(messages)) streamed += chunk.text;
    assert.equal(streamed, ref.output_text);
  });
});
