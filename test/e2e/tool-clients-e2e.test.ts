// Tool calls enforced by the grammar engine, end to end on the real Engine with a tiny random
// Qwen3 model (real tokenizer and template). Random weights never write a valid call on their own,
// so what is tested is enforcement: seeded tool_choice required / named requests, streamed and
// not, give 0 invalid calls (name in tools, arguments valid against the tool's schema, OpenAI's
// exact stream shape); `auto` forces a complete call once the trigger appears. Then the real
// clients: openai (chat.completions.stream + finalChatCompletion), @langchain/openai (bindTools)
// and ai + @ai-sdk/openai-compatible (generateText with tools).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, jsonSchema, tool } from 'ai';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { closeServed, serveTinyQwen3, type Served } from './tiny-qwen3-server.js';
import { enforcedChoiceProblems, type ChoiceCase } from './enforced-tool-choice.js';
import { invalidCalls, validatorsFor, type Call } from './tool-call-checks.js';

// Schemas a random model can finish in a bounded number of tokens (bounded strings, enums, ranges).
const TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 12 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function' as const,
    function: {
      name: 'set_alarm',
      parameters: {
        type: 'object',
        properties: {
          hour: { type: 'integer', minimum: 0, maximum: 23 },
          days: { type: 'array', items: { type: 'string', enum: ['mon', 'tue', 'wed'] }, maxItems: 3 },
          loud: { type: 'boolean' },
          label: {
            type: 'object',
            properties: { text: { type: 'string', maxLength: 8 } },
            required: ['text'],
            additionalProperties: false,
          },
        },
        required: ['hour', 'days', 'loud', 'label'],
        additionalProperties: false,
      },
    },
  },
];
const ENUM_TOOL = {
  type: 'function' as const,
  function: {
    name: 'pick',
    parameters: { type: 'object', properties: { c: { type: 'string', enum: ['a', 'b'] } }, required: ['c'], additionalProperties: false },
  },
};
const TOOL_CALL_ID = 151657; // <tool_call> in the Qwen3 vocabulary

const validators = validatorsFor([...TOOLS, ENUM_TOOL]);
const invalid = (calls: readonly Call[], opts: { required: boolean; name?: string }): string[] => invalidCalls(calls, validators, opts);

describe('tool calls enforced by the grammar engine (tiny random Qwen3)', {
  skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json'),
}, () => {
  let s: Served;
  before(async () => {
    s = await serveTinyQwen3({ seed: 11 });
  });
  after(() => closeServed(s));

  const messages = [{ role: 'user' as const, content: 'Set an alarm and tell me the weather in Paris.' }];

  it('required and named tool_choice: 0 invalid calls over seeded requests, streamed and not', async () => {
    const cases: ChoiceCase[] = [
      { choice: 'required', parallel: true },
      { choice: 'required', parallel: false },
      { choice: { type: 'function', function: { name: 'set_alarm' } }, parallel: false },
      { choice: { type: 'function', function: { name: 'get_weather' } }, parallel: true },
    ];
    const check = { tools: TOOLS, validators, messages, cases, maxTokens: 160, markers: ['<tool_call>'] };
    const { problems, numCalls } = await enforcedChoiceProblems(s, check);
    assert.deepEqual(problems, []);
    assert.ok(numCalls >= cases.length * 2);
  });

  it('auto: once the trigger appears the call is forced to completion; no marker text in content', async () => {
    const body = {
      model: 'tiny',
      messages,
      tools: [ENUM_TOOL],
      tool_choice: 'auto' as const,
      parallel_tool_calls: false,
      max_tokens: 64,
      temperature: 1,
      seed: 7,
      logit_bias: { [TOOL_CALL_ID]: 100 }, // random weights would rarely start a call by themselves
    };
    const r = await s.client.chat.completions.create(body);
    const ch = r.choices[0]!;
    assert.equal(ch.finish_reason, 'tool_calls', JSON.stringify(ch));
    const calls = ch.message.tool_calls!.map((t) =>
      t.type === 'function' ? { id: t.id, name: t.function.name, arguments: t.function.arguments } : { id: '', name: '', arguments: '' },
    );
    assert.deepEqual(invalid(calls, { required: true }), []);
    assert.ok(!(ch.message.content ?? '').includes('<tool_call>'));
  });

  it('openai: chat.completions.stream() with tools and finalChatCompletion()', async () => {
    const names: string[] = [];
    const stream = s.client.chat.completions.stream({
      model: 'tiny',
      messages,
      tools: TOOLS,
      tool_choice: 'required',
      max_tokens: 256,
      seed: 3,
    });
    stream.on('tool_calls.function.arguments.done', (e) => names.push(e.name));
    const final = await stream.finalChatCompletion();
    const ch = final.choices[0]!;
    assert.equal(ch.finish_reason, 'tool_calls');
    const calls = ch.message.tool_calls!.map((t) =>
      t.type === 'function' ? { id: t.id, name: t.function.name, arguments: t.function.arguments } : { id: '', name: '', arguments: '' },
    );
    assert.deepEqual(invalid(calls, { required: true }), []);
    assert.deepEqual(
      names,
      calls.map((c) => c.name),
    );
    assert.equal(ch.message.content, null);
  });

  it('@langchain/openai: bindTools with tool_choice', async () => {
    const model = new ChatOpenAI({
      model: 'tiny',
      apiKey: 'sk-any',
      configuration: { baseURL: `${s.url}/v1` },
      maxTokens: 160,
      temperature: 1,
      maxRetries: 0,
    });
    const bound = model.bindTools([TOOLS[0]!], { tool_choice: 'get_weather', seed: 5 });
    const msg = await bound.invoke('What is the weather in Paris?');
    assert.ok(msg.tool_calls && msg.tool_calls.length >= 1, JSON.stringify(msg));
    const call = msg.tool_calls[0]!;
    assert.equal(call.name, 'get_weather');
    assert.ok(validators.get('get_weather')!(call.args), JSON.stringify(call.args));
  });

  it('ai + @ai-sdk/openai-compatible: generateText with tools', async () => {
    const provider = createOpenAICompatible({ name: 'tokenmill', baseURL: `${s.url}/v1`, apiKey: 'sk-any' });
    const weather = TOOLS[0]!.function;
    const result = await generateText({
      model: provider.chatModel('tiny'),
      prompt: 'What is the weather in Paris?',
      tools: {
        get_weather: tool({
          description: weather.description,
          inputSchema: jsonSchema<{ city: string; unit: string }>(weather.parameters as never),
        }),
      },
      toolChoice: 'required',
      maxOutputTokens: 160,
      seed: 5,
      maxRetries: 0,
    });
    assert.ok(result.toolCalls.length >= 1, JSON.stringify(result.content));
    const call = result.toolCalls[0]!;
    assert.equal(call.toolName, 'get_weather');
    assert.ok(validators.get('get_weather')!(call.input), JSON.stringify(call.input));
    assert.equal(result.finishReason, 'tool-calls');
  });
});
