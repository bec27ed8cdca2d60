// Stream chunks for a chat choice whose output runs through a parser (tools, reasoning), in
// OpenAI's exact shape: the first chunk carries role "assistant"; content and reasoning_content as
// text fragments; each tool call as {index, id, type, function: {name, arguments: ""}} followed by
// {index, function: {arguments: fragment}} chunks; finish_reason ("tool_calls" after calls) on the
// choice's last chunk. Pure functions; no I/O.

import { chatFinish, chatLogprobs, type ChoiceState, type ResolvedLogprob, type ResponseHead } from './format.js';
import type { OutputDelta } from './tools/output-parser.js';

type Delta = Record<string, unknown>;

/** One delta object per run of same-channel deltas (content, reasoning, one call's start or arguments). */
function deltaObjects(deltas: readonly OutputDelta[]): Delta[] {
  const out: Delta[] = [];
  for (const d of deltas) {
    if (d.type === 'content') out.push({ content: d.text });
    else if (d.type === 'reasoning') out.push({ reasoning_content: d.text });
    else if (d.type === 'tool_call')
      out.push({ tool_calls: [{ index: d.index, id: d.id, type: 'function', function: { name: d.name, arguments: '' } }] });
    else out.push({ tool_calls: [{ index: d.index, function: { arguments: d.text } }] });
  }
  return out;
}

/** The chunks for one engine increment of one choice (possibly none). */
export function parsedChatChunks(
  head: ResponseHead,
  choice: ChoiceState,
  deltas: readonly OutputDelta[],
  opts: { logprobs: ResolvedLogprob[] | null; finished: boolean; includeUsage: boolean },
): Record<string, unknown>[] {
  const objs = deltaObjects(deltas);
  if (!choice.started) objs.unshift({ role: 'assistant', content: '' });
  const hasLogprobs = opts.logprobs !== null && opts.logprobs.length > 0;
  if (objs.length === 0 && (opts.finished || hasLogprobs)) objs.push({});
  return objs.map((delta, i) => {
    const last = i === objs.length - 1;
    const chunk: Record<string, unknown> = {
      id: head.id,
      object: 'chat.completion.chunk',
      created: head.created,
      model: head.model,
      system_fingerprint: head.systemFingerprint,
      choices: [
        {
          index: choice.index,
          delta,
          logprobs: i === 0 && opts.logprobs !== null ? chatLogprobs(opts.logprobs) : null,
          finish_reason: last && opts.finished ? chatFinish(choice) : null,
        },
      ],
    };
    if (opts.includeUsage) chunk.usage = null;
    return chunk;
  });
}
