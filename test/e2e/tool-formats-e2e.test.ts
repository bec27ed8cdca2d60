// Llama 3.1 (JSON calls, <|python_tag|>) and Mistral ([TOOL_CALLS]) tool calling end to end: the
// live server and the real Engine over tiny random models in each format (tool-format-models.ts:
// the Llama 3 tokenizer with 3.1's renamed specials and our own 3.1-style template; a synthetic
// tokenizer with Mistral's control tokens and our Mistral-style template). The parser is chosen
// from the template (or --tool-call-parser); tool_choice required / named is enforced by the grammar
// so every call is well formed, streamed and not, in OpenAI's exact stream shape; auto leaves text
// alone until the format's trigger and then forces a complete call; the official openai client
// reads the calls (create, stream + finalChatCompletion).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chatPromptIds } from '../../src/server/prompt.js';
import { chatSchema, DEFAULT_LIMITS, parseBody } from '../../src/server/schemas.js';
import { resolveOutputParsers } from '../../src/server/tools/chat-parsing.js';
import { parseToolRequest } from '../../src/server/tools/tool-request.js';
import { rawSse } from '../server/helpers.js';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { closeServed, type Served } from './tiny-qwen3-server.js';
import { enforcedChoiceProblems, type ChoiceCase } from './enforced-tool-choice.js';
import { callsFromStream, callsOf, invalidCalls, validatorsFor } from './tool-call-checks.js';
import { LLAMA31_PYTHON_TAG_ID, MISTRAL_TOOL_CALLS_ID, serveToolFormat, type ToolFormat } from './tool-format-models.js';

const TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        additionalProperties: false,
        required: ['city', 'unit'],
        properties: { city: { type: 'string', maxLength: 10 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      },
    },
  },
  {
    type: 'function' as const,
    function: {
      name: 'set_alarm',
      parameters: {
        type: 'object',
        additionalProperties: false,
        required: ['hour', 'loud'],
        properties: {
          hour: { type: 'integer', minimum: 0, maximum: 23 },
          loud: { type: 'boolean' },
          days: { type: 'array', items: { enum: ['mon', 'tue'] }, maxItems: 2 },
        },
      },
    },
  },
];
const validators = validatorsFor(TOOLS);
const messages = [{ role: 'user' as const, content: 'Set an alarm and tell me the weather in Paris.' }];

interface FormatCase {
  readonly format: ToolFormat;
  readonly parser: 'llama3_json' | 'mistral';
  /** Text that must never reach content. */
  readonly markers: readonly string[];
  /** How the fixture template renders a past call and its result. */
  readonly renderedCall: string;
  readonly renderedResult: string;
  /** logit_bias that makes a random model start a call in auto mode. */
  readonly autoBias: Record<string, number>;
  readonly skip: string | false;
}

const CASES: readonly FormatCase[] = [
  {
    format: 'llama31',
    parser: 'llama3_json',
    markers: ['<|python_tag|>', '"parameters"'],
    renderedCall: '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}<|eom_id|>',
    renderedResult: '<|start_header_id|>ipython<|end_header_id|>\n\n18C<|eot_id|>',
    autoBias: { [LLAMA31_PYTHON_TAG_ID]: 100 },
    skip: skipUnlessShared('llama3-tokenizer/tokenizer.json'),
  },
  {
    format: 'mistral',
    parser: 'mistral',
    markers: ['[TOOL_CALLS]', '[ARGS]'],
    renderedCall: '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}, "id": "call_1"}]</s>',
    renderedResult: '[TOOL_RESULTS]{"call_id": "call_1", "content": "18C"}[/TOOL_RESULTS]',
    autoBias: { [MISTRAL_TOOL_CALLS_ID]: 100 },
    skip: false,
  },
];

for (const fc of CASES) {
  describe(`${fc.format} tool calls on a tiny random model through the live server`, { skip: fc.skip }, () => {
    let s: Served;
    before(async () => {
      s = await serveToolFormat(fc.format, { seed: 11 });
    });
    after(() => closeServed(s));
    const noMarkers = (text: string | null | undefined, what: string): void => {
      for (const m of fc.markers) assert.ok(!(text ?? '').includes(m), `${what}: marker ${m} in content ${JSON.stringify(text)}`);
    };

    it(`the template selects the ${fc.parser} parser; --tool-call-parser overrides it`, () => {
      const t = s.stack.frontend.chatTemplate;
      assert.equal(resolveOutputParsers({}, t).toolCallParser, fc.parser);
      assert.equal(resolveOutputParsers({ toolCallParser: 'auto' }, t).toolCallParser, fc.parser);
      assert.equal(resolveOutputParsers({ toolCallParser: 'none' }, t).toolCallParser, null);
      assert.equal(resolveOutputParsers({ toolCallParser: 'hermes' }, t).toolCallParser, 'hermes');
    });

    it('tools, a past call and its result reach the template in the format', async () => {
      const call = { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } };
      const body = parseBody(chatSchema(DEFAULT_LIMITS), {
        model: 'tiny',
        tools: TOOLS,
        messages: [
          ...messages,
          { role: 'assistant', content: null, tool_calls: [call] },
          { role: 'tool', tool_call_id: 'call_1', content: '18C' },
        ],
      });
      const p = await chatPromptIds(body, s.stack.frontend, parseToolRequest(body));
      assert.ok(p.text.includes('"name": "set_alarm"') && p.text.includes('"name": "get_weather"'), p.text);
      assert.ok(p.text.includes(fc.renderedCall), p.text);
      assert.ok(p.text.includes(fc.renderedResult), p.text);
    });

    it('required and named tool_choice: 0 invalid calls over seeded requests, streamed and not', async () => {
      const cases: ChoiceCase[] = [
        { choice: 'required', parallel: false },
        { choice: 'required', parallel: true },
        { choice: { type: 'function', function: { name: 'set_alarm' } }, parallel: false },
        { choice: { type: 'function', function: { name: 'get_weather' } }, parallel: false },
      ];
      const check = { tools: TOOLS, validators, messages, cases, maxTokens: 120, markers: fc.markers };
      const { problems, numCalls } = await enforcedChoiceProblems(s, check);
      assert.deepEqual(problems, []);
      assert.ok(numCalls >= cases.length * 2);
    });

    it('auto: plain text is left alone; once the trigger is sampled the call is forced to completion', async () => {
      const plain = await s.client.chat.completions.create({
        model: 'tiny',
        messages,
        tools: TOOLS,
        tool_choice: 'auto',
        max_tokens: 12,
        temperature: 1,
        seed: 1,
      });
      const p = plain.choices[0]!;
      if (p.message.tool_calls === undefined || p.message.tool_calls.length === 0) {
        assert.ok(p.finish_reason === 'length' || p.finish_reason === 'stop');
        noMarkers(p.message.content, 'auto, no call');
      } else {
        assert.deepEqual(invalidCalls(callsOf(p.message), validators, { required: true }), []);
      }
      for (const seed of [3]) {
        const body = {
          model: 'tiny',
          messages,
          tools: TOOLS,
          tool_choice: 'auto' as const,
          parallel_tool_calls: false,
          max_tokens: 120,
          temperature: 1,
          seed,
          logit_bias: fc.autoBias,
        };
        const r = await s.client.chat.completions.create(body);
        const ch = r.choices[0]!;
        assert.equal(ch.finish_reason, 'tool_calls', JSON.stringify(ch));
        assert.deepEqual(invalidCalls(callsOf(ch.message), validators, { required: true }), []);
        noMarkers(ch.message.content, `auto seed ${seed}`);
        const st = callsFromStream((await rawSse(`${s.url}/v1/chat/completions`, { ...body, stream: true })).events);
        assert.equal(st.finish, 'tool_calls');
        assert.deepEqual(
          st.calls.map((x) => [x.name, x.arguments]),
          callsOf(ch.message).map((x) => [x.name, x.arguments]),
        );
      }
    });

    it('openai client: create() and stream() + finalChatCompletion() read the calls', async () => {
      const names: string[] = [];
      const stream = s.client.chat.completions.stream({
        model: 'tiny',
        messages,
        tools: TOOLS,
        tool_choice: 'required',
        max_tokens: 120,
        seed: 3,
      });
      stream.on('tool_calls.function.arguments.done', (e) => names.push(e.name));
      const final = await stream.finalChatCompletion();
      const ch = final.choices[0]!;
      assert.equal(ch.finish_reason, 'tool_calls');
      const calls = callsOf(ch.message);
      assert.deepEqual(invalidCalls(calls, validators, { required: true }), []);
      assert.deepEqual(
        names,
        calls.map((c) => c.name),
      );
      assert.equal(ch.message.content, null);
      // A follow-up turn with the call and its result renders and runs.
      const next = await s.client.chat.completions.create({
        model: 'tiny',
        max_tokens: 4,
        temperature: 0,
        tools: TOOLS,
        messages: [
          ...messages,
          { role: 'assistant', content: null, tool_calls: ch.message.tool_calls },
          { role: 'tool', tool_call_id: calls[0]!.id, content: '18C' },
        ],
      });
      assert.equal(next.choices.length, 1);
    });
  });
}

describe('a template without a tool format (Mistral vocabulary)', () => {
  let plain: Served | undefined;
  let flagged: Served | undefined;
  before(async () => {
    plain = await serveToolFormat('mistral', { template: 'plain' });
    flagged = await serveToolFormat('mistral', { template: 'plain', toolCallParser: 'mistral' });
  });
  after(async () => {
    await closeServed(plain);
    await closeServed(flagged);
  });

  it('tools are a 400 naming --tool-call-parser; with --tool-call-parser mistral the calls are enforced and parsed', async () => {
    const res = await fetch(`${plain!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages, tools: TOOLS, max_tokens: 4 }),
    });
    const j = (await res.json()) as { error: { code: string; param: string; message: string } };
    assert.equal(res.status, 400);
    assert.equal(j.error.code, 'unsupported_feature');
    assert.match(j.error.message, /--tool-call-parser/);
    const body = {
      model: 'tiny',
      messages,
      tools: TOOLS,
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
      max_tokens: 120,
      seed: 9,
    };
    const r = await flagged!.client.chat.completions.create(body);
    assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
    assert.deepEqual(invalidCalls(callsOf(r.choices[0]!.message), validators, { required: true }), []);
  });
});
