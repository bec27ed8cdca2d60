// Tool calling and reasoning end to end on the real Engine: a tiny random Qwen3-shaped model with
// the real Qwen3 tokenizer and chat template, served on loopback. Bad tool input is a 400 with the
// envelope and the server keeps serving; tools and earlier calls/results reach the template;
// chat_template_kwargs (enable_thinking: false) reach it; a template that opens <think> in the
// prompt gives reasoning_content and reasoning_tokens, streamed and not.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { chatPromptIds } from '../../src/server/prompt.js';
import { chatSchema, DEFAULT_LIMITS, parseBody } from '../../src/server/schemas.js';
import { parseToolRequest } from '../../src/server/tools/tool-request.js';
import { startRealLive } from '../server/helpers.js';
import { TINY_MODEL_ID } from '../server/real-engine.js';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { closeServed, serveTinyQwen3, TIME_TOOL, WEATHER_TOOL, type Served } from './tiny-qwen3-server.js';

async function expect400(url: string, body: Record<string, unknown>, param: RegExp | string, code = 'invalid_request'): Promise<void> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', max_tokens: 2, ...body }),
  });
  const j = (await res.json()) as { error?: { message: string; type: string; param: string | null; code: string | null } };
  assert.equal(res.status, 400, JSON.stringify(j));
  assert.ok(j.error, 'OpenAI envelope');
  assert.equal(j.error.type, 'invalid_request_error');
  assert.equal(j.error.code, code);
  assert.equal(typeof j.error.message, 'string');
  if (typeof param === 'string') assert.equal(j.error.param, param);
  else assert.match(j.error.param ?? '', param);
}

const USER = { role: 'user' as const, content: 'What is the weather in Paris?' };
const CALL = { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Paris"}' } };

describe('tools and reasoning on a tiny random Qwen3 model (real tokenizer and template)', {
  skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json'),
}, () => {
  let s: Served;
  before(async () => {
    s = await serveTinyQwen3();
  });
  after(() => closeServed(s));

  it('bad tool input is a 400 with the envelope naming the param; the server keeps serving', async () => {
    const tools = [WEATHER_TOOL];
    await expect400(
      s.url,
      { messages: [USER], tools, tool_choice: { type: 'function', function: { name: 'nope' } } },
      'tool_choice.function.name',
    );
    await expect400(s.url, { messages: [USER], tool_choice: 'required' }, 'tool_choice');
    await expect400(
      s.url,
      {
        messages: [
          USER,
          { role: 'assistant', content: null, tool_calls: [CALL] },
          { role: 'tool', tool_call_id: 'call_2', content: '18C' },
        ],
        tools,
      },
      'messages.2.tool_call_id',
    );
    await expect400(s.url, { messages: [USER, { role: 'tool', content: '18C' }], tools }, 'messages.1.tool_call_id');
    await expect400(
      s.url,
      {
        messages: [
          USER,
          { role: 'assistant', content: null, tool_calls: [{ ...CALL, function: { name: 'get_weather', arguments: '{oops' } }] },
        ],
        tools,
      },
      'messages.1.tool_calls.0.function.arguments',
    );
    await expect400(s.url, { messages: [USER], tools: [{ type: 'function', function: { name: 'bad name!' } }] }, 'tools.0.function.name');
    await expect400(s.url, { messages: [USER], tools: [WEATHER_TOOL, WEATHER_TOOL] }, 'tools.1.function.name');
    await expect400(s.url, { messages: [USER], tools: [{ type: 'retrieval' }] }, /^tools\.0/);
    await expect400(s.url, { messages: [USER], tools, tool_choice: 'sometimes' }, /^tool_choice/);
    await expect400(s.url, { messages: [USER], chat_template_kwargs: 'enable_thinking' }, 'chat_template_kwargs');
    const res = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'hi', tools }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unsupported_feature');
    const ok = await s.client.chat.completions.create({ model: 'tiny', messages: [USER], max_tokens: 3, temperature: 0 });
    assert.equal(ok.choices.length, 1);
  });

  it('tools, earlier calls and tool results reach the chat template; tool_choice none leaves tools out', async () => {
    const body = parseBody(chatSchema(DEFAULT_LIMITS), {
      messages: [
        USER,
        { role: 'assistant', content: null, tool_calls: [CALL] },
        { role: 'tool', tool_call_id: 'call_1', content: '18C and sunny' },
      ],
      tools: [WEATHER_TOOL, TIME_TOOL],
    });
    const p = await chatPromptIds(body, s.stack.frontend, parseToolRequest(body));
    assert.match(p.text, /# Tools/);
    assert.ok(p.text.includes('"name": "get_weather"') && p.text.includes('"name": "get_time"'), 'both tools listed');
    assert.ok(p.text.includes('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'), p.text);
    assert.ok(p.text.includes('<tool_response>\n18C and sunny\n</tool_response>'));
    const none = await chatPromptIds(body, s.stack.frontend, parseToolRequest({ ...body, tool_choice: 'none' }));
    assert.ok(!none.text.includes('# Tools'));
    // And through HTTP: the conversation is accepted and answered.
    const r = await s.client.chat.completions.create({
      model: 'tiny',
      messages: body.messages as OpenAI.ChatCompletionMessageParam[],
      tools: [WEATHER_TOOL, TIME_TOOL],
      max_tokens: 4,
      temperature: 0,
    });
    assert.ok(r.usage!.prompt_tokens === p.ids.length);
  });

  it('chat_template_kwargs enable_thinking: false reaches the template (an empty think block in the prompt)', async () => {
    const base = { model: 'tiny', messages: [USER], max_tokens: 2, temperature: 0 };
    const on = await s.client.chat.completions.create(base);
    const off = await s.client.chat.completions.create({
      ...base,
      chat_template_kwargs: { enable_thinking: false },
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const thinkBlock = await s.stack.frontend.encode('<think>\n\n</think>\n\n', { addSpecialTokens: false });
    assert.equal(off.usage!.prompt_tokens - on.usage!.prompt_tokens, thinkBlock.length);
    const usage = off.usage as OpenAI.CompletionUsage;
    assert.equal(usage.completion_tokens_details?.reasoning_tokens, 0, 'reasoning parser on (auto from the template), nothing reasoned');
  });

  it('a model without a tool-call format answers tools with unsupported_feature (tool_choice none is fine)', async () => {
    const live = await startRealLive(); // the tiny byte model: no tool-call format
    try {
      const res = await fetch(`${live.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [USER], tools: [WEATHER_TOOL] }),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: { code: string; param: string } }).error.code, 'unsupported_feature');
      const ok = await live.client.chat.completions.create({
        model: TINY_MODEL_ID,
        messages: [USER],
        tools: [WEATHER_TOOL],
        tool_choice: 'none',
        max_tokens: 3,
        temperature: 0,
      });
      assert.equal(ok.choices[0]!.finish_reason, 'length');
    } finally {
      await live.close();
    }
  });
});

describe('reasoning on a template that opens <think> in the prompt', { skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json') }, () => {
  let s: Served;
  before(async () => {
    // Qwen3-Thinking-2507 style: the generation prompt ends with "<think>\n".
    s = await serveTinyQwen3({
      template: (t) => t.replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}"),
    });
  });
  after(() => closeServed(s));

  it('everything before </think> is reasoning_content, counted in reasoning_tokens, streamed the same', async () => {
    const req = {
      model: 'tiny',
      messages: [USER],
      max_tokens: 12,
      temperature: 1,
      seed: 42,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming;
    const r = await s.client.chat.completions.create(req);
    const msg = r.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string | null };
    assert.ok(typeof msg.reasoning_content === 'string' && msg.reasoning_content.length > 0, JSON.stringify(msg));
    assert.ok(!msg.reasoning_content.includes('<think>') && !msg.reasoning_content.includes('</think>'));
    const details = r.usage!.completion_tokens_details!;
    // Seeded: no </think> is generated (random weights), so every token is reasoning.
    assert.equal(msg.content, '');
    assert.equal(details.reasoning_tokens, r.usage!.completion_tokens);
    const stream = await s.client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let reasoning = '';
    let content = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const c of stream) {
      const d = c.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined;
      reasoning += d?.reasoning_content ?? '';
      content += d?.content ?? '';
      if (c.usage) usage = c.usage;
    }
    assert.equal(reasoning, msg.reasoning_content);
    assert.equal(content, msg.content ?? '');
    assert.equal(usage!.completion_tokens_details!.reasoning_tokens, details.reasoning_tokens);
  });
});
