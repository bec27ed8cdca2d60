// Test helper: the seeded tool_choice required / named check that both tool-call suites run on a
// served tiny model (tool-clients-e2e: Qwen3's hermes format; tool-formats-e2e: Llama 3.1 and
// Mistral). Each case and seed goes once as a plain request and once streamed: every call valid for
// its tool, finish_reason tool_calls (a parallel run cut at max_tokens drops only its last call),
// exactly one call without parallel_tool_calls, no format marker in content, and the streamed calls
// equal to the plain ones (same seed, same tokens).
import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import { rawSse } from '../server/helpers.js';
import type { Served } from './tiny-qwen3-server.js';
import { callsFromStream, callsOf, invalidCalls, type Validators } from './tool-call-checks.js';

export interface ChoiceCase {
  readonly choice: OpenAI.ChatCompletionToolChoiceOption;
  readonly parallel: boolean;
}

export interface EnforcedChoiceCheck {
  readonly tools: OpenAI.ChatCompletionTool[];
  readonly validators: Validators;
  readonly messages: OpenAI.ChatCompletionMessageParam[];
  readonly cases: readonly ChoiceCase[];
  readonly maxTokens: number;
  /** Text of the format that must never reach content. */
  readonly markers: readonly string[];
}

/** Problems over every case and seed (empty: all enforced), and how many calls the plain requests made. */
export async function enforcedChoiceProblems(s: Served, o: EnforcedChoiceCheck): Promise<{ problems: string[]; numCalls: number }> {
  const problems: string[] = [];
  let numCalls = 0;
  const noMarkers = (text: string | null | undefined, what: string): void => {
    for (const m of o.markers) assert.ok(!(text ?? '').includes(m), `${what}: marker ${m} in content ${JSON.stringify(text)}`);
  };
  for (const [i, c] of o.cases.entries()) {
    const name = typeof c.choice === 'object' && 'function' in c.choice ? c.choice.function.name : undefined;
    const must = { required: true, ...(name ? { name } : {}) };
    for (let seed = 0; seed < 2; seed++) {
      const tag = `case ${i} seed ${seed}`;
      const body = {
        model: 'tiny',
        messages: o.messages,
        tools: o.tools,
        tool_choice: c.choice,
        parallel_tool_calls: c.parallel,
        max_tokens: o.maxTokens,
        temperature: 1,
        seed: 100 * i + seed,
      };
      const r = await s.client.chat.completions.create(body);
      const ch = r.choices[0]!;
      const calls = callsOf(ch.message);
      // With parallel calls a random model may go on calling until max_tokens: then only the last
      // call may be cut short (finish_reason length); every call before it must be complete.
      if (c.parallel && ch.finish_reason === 'length' && calls.length > 1) calls.pop();
      else if (ch.finish_reason !== 'tool_calls') problems.push(`${tag}: finish_reason ${ch.finish_reason}`);
      if (!c.parallel && calls.length !== 1) problems.push(`${tag}: ${calls.length} calls with parallel_tool_calls false`);
      problems.push(...invalidCalls(calls, o.validators, must).map((p) => `${tag}: ${p}`));
      noMarkers(ch.message.content, tag);
      numCalls += calls.length;
      const st = await rawSse(`${s.url}/v1/chat/completions`, { ...body, stream: true });
      assert.equal(st.status, 200);
      const streamed = callsFromStream(st.events); // asserts OpenAI's fragment shape
      if (c.parallel && streamed.finish === 'length' && streamed.calls.length > 1) streamed.calls.pop();
      else if (streamed.finish !== 'tool_calls') problems.push(`stream ${tag}: finish_reason ${streamed.finish}`);
      noMarkers(streamed.content, `stream ${tag}`);
      problems.push(...invalidCalls(streamed.calls, o.validators, must).map((p) => `stream ${tag}: ${p}`));
      assert.deepEqual(
        streamed.calls.map((x) => [x.name, x.arguments]),
        calls.map((x) => [x.name, x.arguments]),
        `${tag}: streamed = not streamed`,
      );
    }
  }
  return { problems, numCalls };
}
