// Test helper: checks on tool calls as a client sees them: a call's name, id and arguments (valid
// against the tool's schema), and OpenAI's exact streaming shape for tool-call fragments.
import assert from 'node:assert/strict';
import { Ajv, type ValidateFunction } from 'ajv';
import type OpenAI from 'openai';

export interface Call {
  id: string;
  name: string;
  arguments: string;
}
export type Validators = ReadonlyMap<string, ValidateFunction>;

const ajv = new Ajv({ strict: false });

export function validatorsFor(tools: readonly { function: { name: string; parameters: object } }[]): Validators {
  return new Map(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
}

export function callsOf(m: OpenAI.ChatCompletionMessage): Call[] {
  return (m.tool_calls ?? []).map((t) =>
    t.type === 'function' ? { id: t.id, name: t.function.name, arguments: t.function.arguments } : { id: t.id, name: '?', arguments: '' },
  );
}

/** Problems with a choice's calls (empty: all valid). */
export function invalidCalls(calls: readonly Call[], validators: Validators, opts: { required: boolean; name?: string }): string[] {
  const bad: string[] = [];
  if (opts.required && calls.length === 0) bad.push('no call');
  for (const c of calls) {
    const v = validators.get(c.name);
    if (!v) {
      bad.push(`unknown tool ${c.name}`);
      continue;
    }
    if (opts.name !== undefined && c.name !== opts.name) bad.push(`called ${c.name}, not ${opts.name}`);
    if (!/^call_[0-9a-f]{24}$/.test(c.id)) bad.push(`id ${c.id}`);
    let args: unknown;
    try {
      args = JSON.parse(c.arguments);
    } catch {
      bad.push(`arguments not JSON: ${c.arguments}`);
      continue;
    }
    if (!v(args)) bad.push(`arguments ${c.arguments} fail the schema: ${ajv.errorsText(v.errors)}`);
  }
  return bad;
}

/** Calls from raw SSE chunks, checking OpenAI's exact fragment shape on the way. */
export function callsFromStream(events: readonly string[]): { calls: Call[]; finish: string | null; content: string } {
  const calls: Call[] = [];
  let finish: string | null = null;
  let content = '';
  for (const e of events) {
    if (e === '[DONE]') continue;
    const chunk = JSON.parse(e) as {
      choices: { delta: { content?: string | null; tool_calls?: Record<string, unknown>[] }; finish_reason: string | null }[];
    };
    for (const ch of chunk.choices) {
      if (ch.finish_reason) finish = ch.finish_reason;
      content += ch.delta.content ?? '';
      for (const f of ch.delta.tool_calls ?? []) {
        const index = f.index as number;
        assert.equal(typeof index, 'number', 'index on every fragment');
        const fn = f.function as { name?: string; arguments?: string };
        assert.equal(typeof fn.arguments, 'string', 'arguments as string fragments');
        if (calls[index] === undefined) {
          assert.equal(index, calls.length, 'calls numbered in order');
          assert.ok(
            typeof f.id === 'string' && f.type === 'function' && typeof fn.name === 'string',
            `first fragment has id, type and name: ${e}`,
          );
          calls[index] = { id: f.id as string, name: fn.name!, arguments: fn.arguments! };
        } else {
          assert.ok(f.id === undefined && fn.name === undefined, 'later fragments carry arguments only');
          calls[index]!.arguments += fn.arguments!;
        }
      }
    }
  }
  return { calls, finish, content };
}
