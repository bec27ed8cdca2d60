// /v1/responses with function tools and reasoning, through the openai client. The real engine on the
// tiny byte model, scripted (each request constrained to a recorded Qwen3-style output), runs the
// real hermes and qwen3 output parsers: reasoning, message and function_call items, the same output streamed and
// not, the function_call_arguments events, parallel_tool_calls: false. On the real Engine with a
// tiny random Qwen3 (real tokenizer and template): function_call / function_call_output items and
// reasoning.effort "none" render the same prompt as their chat equivalents; bad tool input is a 400;
// a template that opens <think> gives a reasoning item with reasoning_tokens, streamed the same.
// Structured outputs through the client libraries on the same model: random weights never write
// valid JSON on their own, so every object exists because the grammar enforced it: openai
// Responses text.format json_schema (create, stream) and responses.parse with a zod format;
// @langchain/openai withStructuredOutput over chat completions and over the Responses API; ai +
// @ai-sdk/openai-compatible generateObject. Every result is checked against its schema.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { startRealLive, type RealLive } from './helpers.js';
import { TINY_MODEL_ID } from './real-engine.js';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { closeServed, serveTinyQwen3, WEATHER_TOOL, type Served } from '../e2e/tiny-qwen3-server.js';

const TOOL: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: WEATHER_TOOL.function.description,
  parameters: WEATHER_TOOL.function.parameters,
  strict: false,
};
const CALL_TEXT = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
// Reasoning, a short message, then two parallel calls; the scripted engine stops (EOS) after it.
const SCRIPT = `<think>The user wants the weather.</think>Let me check.${CALL_TEXT}${CALL_TEXT}`;

type Item = OpenAI.Responses.ResponseOutputItem;

/** The output without its random ids, for comparing two runs. */
function shape(items: readonly Item[]): unknown[] {
  return items.map((it) => {
    if (it.type === 'message')
      return { type: it.type, status: it.status, text: it.content.map((c) => (c.type === 'output_text' ? c.text : '')).join('') };
    if (it.type === 'reasoning') return { type: it.type, status: it.status, text: (it.content ?? []).map((c) => c.text).join('') };
    if (it.type === 'function_call')
      return { type: it.type, status: it.status, name: it.name, arguments: JSON.parse(it.arguments) as unknown };
    return { type: it.type };
  });
}

describe('/v1/responses output parsing (real engine scripted to a recorded output, real parsers)', () => {
  let live: RealLive;
  before(async () => {
    live = await startRealLive({
      engine: { script: SCRIPT, contextLen: 1024 },
      server: { toolCallParser: 'hermes', reasoningParser: 'qwen3' },
    });
  });
  after(() => live.close());
  const req: OpenAI.Responses.ResponseCreateParamsNonStreaming = {
    model: TINY_MODEL_ID,
    input: 'Weather in Paris?',
    tools: [TOOL],
    temperature: 0,
    max_output_tokens: 400,
  };

  it('reasoning, message and function_call items; usage counts reasoning tokens', async () => {
    const r = await live.client.responses.create(req);
    assert.equal(r.status, 'completed');
    assert.deepEqual(shape(r.output), [
      { type: 'reasoning', status: 'completed', text: 'The user wants the weather.' },
      { type: 'message', status: 'completed', text: 'Let me check.' },
      { type: 'function_call', status: 'completed', name: 'get_weather', arguments: { city: 'Paris' } },
      { type: 'function_call', status: 'completed', name: 'get_weather', arguments: { city: 'Paris' } },
    ]);
    assert.notEqual(
      (r.output[2] as OpenAI.Responses.ResponseFunctionToolCall).call_id,
      (r.output[3] as OpenAI.Responses.ResponseFunctionToolCall).call_id,
    );
    const call = r.output[2] as OpenAI.Responses.ResponseFunctionToolCall;
    assert.match(call.call_id, /^call_/);
    assert.match(call.id!, /^fc_/);
    assert.match(r.output[0]!.id!, /^rs_/);
    assert.equal(r.output_text, 'Let me check.');
    // The byte-level FakeFrontend has no single-token <think> marker, so no reasoning tokens are counted
    // (the real Qwen3 case below counts them).
    assert.equal(r.usage!.output_tokens_details.reasoning_tokens, 0);
  });

  it('streamed: the same items, reasoning_text and function_call_arguments events in order', async () => {
    const whole = await live.client.responses.create(req);
    const stream = live.client.responses.stream(req as Parameters<OpenAI['responses']['stream']>[0]);
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const e of stream) events.push(e);
    const final = await stream.finalResponse();
    assert.deepEqual(shape(final.output), shape(whole.output));
    const types: string[] = events.map((e) => e.type);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const firstOf = (t: string): number => types.indexOf(t);
    assert.ok(firstOf('response.reasoning_text.delta') < firstOf('response.output_text.delta'));
    assert.ok(firstOf('response.output_text.delta') < firstOf('response.function_call_arguments.delta'));
    const added = events.filter((e): e is OpenAI.Responses.ResponseOutputItemAddedEvent => e.type === 'response.output_item.added');
    assert.deepEqual(
      added.map((e) => [e.output_index, e.item.type]),
      [
        [0, 'reasoning'],
        [1, 'message'],
        [2, 'function_call'],
        [3, 'function_call'],
      ],
    );
    const callAdded = added[2]!.item as OpenAI.Responses.ResponseFunctionToolCall;
    assert.equal(callAdded.name, 'get_weather');
    assert.equal(callAdded.arguments, '');
    const args = events
      .filter((e) => e.type === 'response.function_call_arguments.delta' && e.output_index === 2)
      .map((e) => (e as OpenAI.Responses.ResponseFunctionCallArgumentsDeltaEvent).delta)
      .join('');
    const argsDone = events.find(
      (e) => e.type === 'response.function_call_arguments.done',
    ) as OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent;
    assert.equal(argsDone.arguments, args);
    assert.equal(argsDone.name, 'get_weather');
    assert.equal(argsDone.item_id, callAdded.id);
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });
    assert.equal(types.at(-1), 'response.completed');
  });

  it('parallel_tool_calls: false keeps the first call only', async () => {
    const r = await live.client.responses.create({ ...req, parallel_tool_calls: false });
    assert.deepEqual(
      r.output.map((i) => i.type),
      ['reasoning', 'message', 'function_call'],
    );
    assert.equal(r.parallel_tool_calls, false);
  });
});

// One tiny Qwen3 server (default template) for the tools and the structured-output clients.
const noQwen3 = skipUnlessShared('qwen3-tokenizer/tokenizer.json');
let shared: Promise<Served> | null = null;
const qwen3 = (): Promise<Served> => (shared ??= serveTinyQwen3({ seed: 9 }));
after(async () => {
  if (shared !== null) await closeServed(await shared);
});

describe('/v1/responses tools on a tiny random Qwen3 (real engine, tokenizer and template)', { skip: noQwen3 }, () => {
  let s: Served;
  before(async () => {
    s = await qwen3();
  });

  it('function_call and function_call_output items render the same prompt as chat tool_calls and tool messages', async () => {
    const r = await s.client.responses.create({
      model: 'tiny',
      tools: [TOOL],
      max_output_tokens: 3,
      temperature: 0,
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city": "Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '18C and sunny' },
      ],
    });
    const chat = await s.client.chat.completions.create({
      model: 'tiny',
      tools: [WEATHER_TOOL],
      max_tokens: 3,
      temperature: 0,
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '18C and sunny' },
      ],
    });
    assert.equal(r.usage!.input_tokens, chat.usage!.prompt_tokens);
    assert.ok(r.status === 'completed' || r.status === 'incomplete');
  });

  it('reasoning.effort "none" turns thinking off like chat_template_kwargs enable_thinking: false', async () => {
    const base = { model: 'tiny', input: 'Hi', max_output_tokens: 2, temperature: 0 };
    const off = await s.client.responses.create({
      ...base,
      reasoning: { effort: 'none' },
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const chatOff = await s.client.chat.completions.create({
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 2,
      chat_template_kwargs: { enable_thinking: false },
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const on = await s.client.responses.create(base);
    assert.equal(off.usage!.input_tokens, chatOff.usage!.prompt_tokens);
    assert.ok(off.usage!.input_tokens > on.usage!.input_tokens, 'an empty think block was added');
  });

  it('tool_choice required / named: the grammar makes every call well formed, streamed and not', async () => {
    const TIME: OpenAI.Responses.FunctionTool = {
      type: 'function',
      name: 'get_time',
      parameters: {
        type: 'object',
        properties: { tz: { type: 'string', enum: ['UTC', 'CET'] } },
        required: ['tz'],
        additionalProperties: false,
      },
      strict: true,
    };
    const city = {
      ...TOOL,
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] } },
        required: ['city'],
        additionalProperties: false,
      },
    };
    const base = {
      model: 'tiny',
      input: 'Weather or time?',
      tools: [city, TIME],
      max_output_tokens: 200,
      temperature: 1,
      reasoning: { effort: 'none' },
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
    for (const [choice, seed] of [
      ['required', 1],
      [{ type: 'function', name: 'get_time' }, 2],
    ] as const) {
      const req = { ...base, tool_choice: choice, seed, parallel_tool_calls: false } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
      const r = await s.client.responses.create(req);
      const calls = r.output.filter((i): i is OpenAI.Responses.ResponseFunctionToolCall => i.type === 'function_call');
      assert.equal(calls.length, 1, JSON.stringify(r.output));
      const c = calls[0]!;
      const args = JSON.parse(c.arguments) as Record<string, unknown>;
      if (c.name === 'get_time') assert.ok(['UTC', 'CET'].includes(args.tz as string), c.arguments);
      else assert.ok(c.name === 'get_weather' && ['Paris', 'Oslo'].includes(args.city as string), c.arguments);
      if (typeof choice === 'object') assert.equal(c.name, 'get_time');
      const stream = s.client.responses.stream(req as Parameters<OpenAI['responses']['stream']>[0]);
      let argDeltas = '';
      stream.on('response.function_call_arguments.delta', (e) => (argDeltas += e.delta));
      const final = await stream.finalResponse();
      const sc = (final.output as OpenAI.Responses.ResponseOutputItem[]).filter(
        (i): i is OpenAI.Responses.ResponseFunctionToolCall => i.type === 'function_call',
      );
      assert.deepEqual(
        sc.map((x) => [x.name, x.arguments]),
        [[c.name, c.arguments]],
        'seeded: streamed == not',
      );
      assert.equal(argDeltas, c.arguments);
    }
  });

  it('bad tool input is a 400 naming the Responses param', async () => {
    const bad = async (body: Record<string, unknown>, param: string): Promise<void> => {
      await assert.rejects(
        s.client.responses.create({
          model: 'tiny',
          input: 'x',
          max_output_tokens: 2,
          ...body,
        } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming),
        (e: unknown) => {
          assert.ok(e instanceof OpenAI.BadRequestError, String(e));
          assert.equal((e.error as { param: string }).param, param, (e.error as { message: string }).message);
          return true;
        },
      );
    };
    await bad({ tools: [TOOL], tool_choice: { type: 'function', name: 'nope' } }, 'tool_choice.name');
    await bad({ tools: [{ ...TOOL, name: 'bad name!' }] }, 'tools.0.name');
    await bad({ tool_choice: 'required' }, 'tool_choice');
    await bad({ tools: [TOOL], tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [] } }, 'tool_choice');
    await bad(
      {
        tools: [TOOL],
        input: [
          { role: 'user', content: 'x' },
          { type: 'function_call_output', call_id: 'call_9', output: '1' },
        ],
      },
      'input.1',
    );
    await bad(
      {
        tools: [TOOL],
        input: [
          { role: 'user', content: 'x' },
          { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{oops' },
        ],
      },
      'input.1',
    );
    const ok = await s.client.responses.create({ model: 'tiny', input: 'still here', max_output_tokens: 2 });
    assert.equal(ok.object, 'response');
  });
});

describe('/v1/responses reasoning on a template that opens <think> (real engine, Qwen3 tokenizer)', {
  skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json'),
}, () => {
  let s: Served;
  before(async () => {
    s = await serveTinyQwen3({
      template: (t) => t.replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}"),
    });
  });
  after(() => closeServed(s));

  it('everything is reasoning (no </think> from random weights): one reasoning item, reasoning_tokens = output_tokens', async () => {
    const req = {
      model: 'tiny',
      input: 'Think about it',
      max_output_tokens: 10,
      temperature: 1,
      seed: 42,
      ignore_eos: true,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
    const r = await s.client.responses.create(req);
    assert.equal(r.status, 'incomplete');
    assert.equal(r.output[0]!.type, 'reasoning');
    const text = (r.output[0] as OpenAI.Responses.ResponseReasoningItem).content![0]!.text;
    assert.ok(text.length > 0 && !text.includes('<think>'));
    assert.equal(r.output_text, '');
    assert.equal(r.usage!.output_tokens_details.reasoning_tokens, r.usage!.output_tokens);
    const stream = s.client.responses.stream(req as Parameters<OpenAI['responses']['stream']>[0]);
    let reasoning = '';
    stream.on('response.reasoning_text.delta', (e) => (reasoning += e.delta));
    const final = await stream.finalResponse();
    assert.equal(reasoning, text);
    assert.deepEqual(shape(final.output), shape(r.output));
    assert.equal(final.usage!.output_tokens_details.reasoning_tokens, r.usage!.output_tokens_details.reasoning_tokens);
  });
});

// Short by construction (enums, booleans, a small integer range), so random weights finish well
// inside the token budget.
const Verdict = z
  .object({
    color: z.enum(['red', 'green', 'blue']),
    ok: z.boolean(),
    level: z.number().int().min(0).max(3),
  })
  .strict();
const JSON_SCHEMA = z.toJSONSchema(Verdict, { target: 'draft-7' }) as Record<string, unknown>;
delete JSON_SCHEMA.$schema;
const MAX_TOKENS = 120;

function assertVerdict(v: unknown, what: string): void {
  const r = Verdict.safeParse(v);
  assert.ok(r.success, `${what}: ${JSON.stringify(v)} ${r.success ? '' : r.error.message}`);
}

describe('structured outputs through openai, @langchain/openai and ai (tiny random Qwen3, real engine)', { skip: noQwen3 }, () => {
  let s: Served;
  before(async () => {
    s = await qwen3();
  });
  const format = { type: 'json_schema' as const, name: 'verdict', schema: JSON_SCHEMA, strict: true };

  it('openai responses.create / responses.stream with text.format json_schema', async () => {
    for (const seed of [1]) {
      const req = {
        model: 'tiny',
        input: 'Judge it.',
        text: { format },
        max_output_tokens: MAX_TOKENS,
        temperature: 1,
        seed,
        reasoning: { effort: 'none' },
      } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
      const r = await s.client.responses.create(req);
      assert.equal(r.status, 'completed', JSON.stringify(r.output));
      assertVerdict(JSON.parse(r.output_text), `create seed ${seed}`);
      assert.deepEqual(r.text?.format, format);
      const stream = s.client.responses.stream(req as Parameters<OpenAI['responses']['stream']>[0]);
      const final = await stream.finalResponse();
      assert.equal(final.output_text, r.output_text, 'seeded: streamed == not');
    }
  });

  it('openai responses.parse with zodTextFormat', async () => {
    const r = await s.client.responses.parse({
      model: 'tiny',
      input: 'Judge it.',
      text: { format: zodTextFormat(Verdict, 'verdict') },
      max_output_tokens: MAX_TOKENS,
      temperature: 1,
      seed: 4,
      reasoning: { effort: 'none' },
    } as Parameters<OpenAI['responses']['parse']>[0]);
    assertVerdict(r.output_parsed, 'responses.parse');
  });

  it('@langchain/openai withStructuredOutput, over chat completions and over the Responses API', async () => {
    const { ChatOpenAI } = await import('@langchain/openai');
    for (const useResponsesApi of [false, true]) {
      const llm = new ChatOpenAI({
        model: 'tiny',
        apiKey: 'sk-any',
        configuration: { baseURL: `${s.url}/v1` },
        useResponsesApi,
        temperature: 1,
        maxTokens: MAX_TOKENS,
        maxRetries: 0,
        modelKwargs: useResponsesApi
          ? { reasoning: { effort: 'none' }, seed: 5 }
          : { chat_template_kwargs: { enable_thinking: false }, seed: 5 },
      });
      const structured = llm.withStructuredOutput(Verdict, { name: 'verdict', method: 'jsonSchema', strict: true });
      const v = await structured.invoke('Judge it.');
      assertVerdict(v, `langchain useResponsesApi=${useResponsesApi}`);
    }
  });

  it('ai generateObject through @ai-sdk/openai-compatible', async () => {
    const { generateObject } = await import('ai');
    const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');
    const provider = createOpenAICompatible({
      name: 'tokenmill',
      baseURL: `${s.url}/v1`,
      apiKey: 'sk-any',
      supportsStructuredOutputs: true,
    });
    const { object, finishReason } = await generateObject({
      model: provider('tiny'),
      schema: Verdict,
      schemaName: 'verdict',
      prompt: 'Judge it.',
      maxOutputTokens: MAX_TOKENS,
      temperature: 1,
      seed: 6,
      maxRetries: 0,
      providerOptions: { tokenmill: { chat_template_kwargs: { enable_thinking: false } } },
    });
    assertVerdict(object, 'generateObject');
    assert.equal(finishReason, 'stop');
  });
});
