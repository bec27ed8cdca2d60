// Output parsers (tool calls: hermes / llama3_json / mistral; reasoning: qwen3 think tags) on
// recorded raw outputs of each format. Each output is cut into the pieces the engine would release
// (the real Qwen3 / Llama 3 tokenizers' tokens, with their ids; characters for Mistral) and fed
// one piece at a time, in two parts at every token boundary, and in random partitions: the joined
// streamed deltas must equal the one-shot parse, which must equal the expected result, and no
// marker text may reach content or reasoning.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IncrementalDetokenizer } from '../../src/engine/detokenizer.js';
import { loadTokenizer, type ModelTokenizer } from '../../src/model/tokenizer.js';
import { emptyParsedOutput, foldDeltas, type OutputDelta, type ParsedOutput } from '../../src/server/tools/output-parser.js';
import {
  ChatOutputParser,
  PARSER_MARKERS,
  type ReasoningParserName,
  type ToolCallParserName,
} from '../../src/server/tools/parser-select.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';

interface Expected {
  readonly content: string;
  readonly reasoning?: string;
  readonly calls?: readonly { name: string; arguments: string }[];
}
interface Case {
  readonly raw: string;
  readonly want: Expected;
  readonly prompt?: string;
}

const HERMES: Case[] = [
  {
    raw:
      '<think>\nThe user wants the weather. I should call get_weather.\n</think>\n\n<tool_call>\n{"name": "get_weather", ' +
      '"arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
    want: {
      content: '',
      reasoning: 'The user wants the weather. I should call get_weather.',
      calls: [{ name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' }],
    },
  },
  {
    raw:
      'Let me check both.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": ' +
      '"Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "Europe/Paris"}}\n</tool_call>',
    want: {
      content: 'Let me check both.',
      calls: [
        { name: 'get_weather', arguments: '{"city": "Paris"}' },
        { name: 'get_time', arguments: '{"tz": "Europe/Paris"}' },
      ],
    },
  },
  {
    raw: '<think>\n\n</think>\n\nParis is sunny. Use < and > freely: a<b, <tool is not a tag.',
    want: { content: 'Paris is sunny. Use < and > freely: a<b, <tool is not a tag.', reasoning: '' },
  },
  {
    raw: '<tool_call>\n{"arguments": {"q": "a \\"quoted\\" }{ string", "n": [1, {"x": null}]}, "name": "search"}\n</tool_call>',
    want: { content: '', calls: [{ name: 'search', arguments: '{"q": "a \\"quoted\\" }{ string", "n": [1, {"x": null}]}' }] },
  },
  { raw: 'Hmm. <tool_call>\nnot json at all\n</tool_call>', want: { content: 'Hmm.\nnot json at all\n' } },
  {
    raw: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par',
    want: { content: '', calls: [{ name: 'get_weather', arguments: '{"city": "Par' }] },
  },
  {
    raw: 'Voilà 🌦️ <tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich 東京"}}\n</tool_call>',
    want: { content: 'Voilà 🌦️', calls: [{ name: 'get_weather', arguments: '{"city": "Zürich 東京"}' }] },
  },
  {
    raw: '<tool_call>\n{"name": "f", "arguments": "{\\"a\\": 1}"}\n</tool_call>',
    want: { content: '', calls: [{ name: 'f', arguments: '{"a": 1}' }] },
  },
  {
    raw: 'I am still thinking about it',
    prompt: '<|im_start|>assistant\n<think>\n',
    want: { content: '', reasoning: 'I am still thinking about it' },
  },
  { raw: 'short</think>\n\nAnswer.', prompt: '<|im_start|>assistant\n<think>\n', want: { content: 'Answer.', reasoning: 'short' } },
];

const LLAMA3: Case[] = [
  {
    raw: '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}',
    want: { content: '', calls: [{ name: 'get_weather', arguments: '{"city": "Paris"}' }] },
  },
  {
    raw: '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {}}',
    want: {
      content: '',
      calls: [
        { name: 'get_weather', arguments: '{"city": "Paris"}' },
        { name: 'get_time', arguments: '{}' },
      ],
    },
  },
  { raw: 'The weather is nice {today}.', want: { content: 'The weather is nice {today}.' } },
  { raw: '{"answer": 42}', want: { content: '{"answer": 42}' } },
  { raw: '  {"name": "x", "arguments": {"a": [1, 2]}}', want: { content: '', calls: [{ name: 'x', arguments: '{"a": [1, 2]}' }] } },
];

const MISTRAL: Case[] = [
  {
    raw: '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {"tz": "UTC"}}]',
    want: {
      content: '',
      calls: [
        { name: 'get_weather', arguments: '{"city": "Paris"}' },
        { name: 'get_time', arguments: '{"tz": "UTC"}' },
      ],
    },
  },
  {
    raw: 'Sure.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_time[ARGS]{"tz": "UTC"}',
    want: {
      content: 'Sure.',
      calls: [
        { name: 'get_weather', arguments: '{"city": "Paris"}' },
        { name: 'get_time', arguments: '{"tz": "UTC"}' },
      ],
    },
  },
  { raw: 'No tools needed [TOOL here].', want: { content: 'No tools needed [TOOL here].' } },
];

interface Piece {
  readonly text: string;
  readonly ids: readonly number[];
}

/** The pieces the engine releases for raw: one per token, with the detokenizer's text. */
async function tokenPieces(tok: ModelTokenizer, raw: string): Promise<Piece[]> {
  const ids = await tok.encode(raw, { addSpecialTokens: false });
  const det = new IncrementalDetokenizer(tok, { skipSpecialTokens: false });
  const pieces = ids.map((id) => ({ text: det.push(id), ids: [id] }));
  assert.equal(pieces.map((p) => p.text).join('') + det.flush(), raw, 'the tokenizer round-trips the recording');
  return pieces;
}

const charPieces = (raw: string): Piece[] => [...raw].map((c) => ({ text: c, ids: [] }));

type Lookup = ((t: string) => number | null) | null;

function parserFor(tool: ToolCallParserName, reasoning: ReasoningParserName | null, lookup: Lookup, prompt?: string): ChatOutputParser {
  let n = 0;
  return new ChatOutputParser({
    toolParser: tool,
    reasoningParser: reasoning,
    singleTokenId: lookup,
    prompt: prompt ?? '',
    newCallId: () => `call_${n++}`,
  });
}

/** Feed groups of pieces (each group one push); returns the folded output and all deltas. */
function run(p: ChatOutputParser, groups: readonly (readonly Piece[])[]): { out: ParsedOutput; deltas: OutputDelta[] } {
  const deltas: OutputDelta[] = [];
  for (const g of groups)
    deltas.push(
      ...p.push(
        g.map((x) => x.text).join(''),
        g.flatMap((x) => x.ids),
      ),
    );
  deltas.push(...p.finish());
  return { out: foldDeltas(emptyParsedOutput(), deltas), deltas };
}

function checkDeltas(deltas: readonly OutputDelta[], markers: readonly string[]): void {
  const started = new Set<number>();
  for (const d of deltas) {
    if (d.type === 'content' || d.type === 'reasoning') {
      for (const m of markers) assert.ok(!d.text.includes(m), `marker ${m} leaked into ${d.type}: ${JSON.stringify(d.text)}`);
    } else if (d.type === 'tool_call') {
      assert.ok(!started.has(d.index), 'one start per call');
      assert.equal(d.index, started.size, 'calls are numbered from 0 in order');
      started.add(d.index);
    } else assert.ok(started.has(d.index), 'arguments only after their call started');
  }
}

function expectParsed(got: ParsedOutput, want: Expected): void {
  assert.equal(got.content, want.content);
  assert.equal(got.reasoning, want.reasoning ?? '');
  assert.deepEqual(
    got.toolCalls.map((c) => ({ name: c.name, arguments: c.arguments })),
    want.calls ?? [],
  );
}

function propertyCheck(tool: ToolCallParserName, reasoning: ReasoningParserName | null, lookup: Lookup, c: Case, pieces: Piece[]): void {
  const markers = [...PARSER_MARKERS[tool], ...(reasoning ? PARSER_MARKERS[reasoning] : [])];
  const oneShot = run(parserFor(tool, reasoning, lookup, c.prompt), [pieces]);
  expectParsed(oneShot.out, c.want);
  checkDeltas(oneShot.deltas, markers);
  const perToken = run(
    parserFor(tool, reasoning, lookup, c.prompt),
    pieces.map((p) => [p]),
  );
  assert.deepEqual(perToken.out, oneShot.out, 'token by token = one shot');
  checkDeltas(perToken.deltas, markers);
  for (let k = 1; k < pieces.length; k++) {
    const two = run(parserFor(tool, reasoning, lookup, c.prompt), [pieces.slice(0, k), pieces.slice(k)]);
    assert.deepEqual(two.out, oneShot.out, `split at token ${k}`);
    checkDeltas(two.deltas, markers);
  }
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: pieces.length }), { maxLength: 12 }), (cuts) => {
      const bounds = [...new Set(cuts)].sort((a, b) => a - b);
      const groups: Piece[][] = [];
      let at = 0;
      for (const b of [...bounds, pieces.length]) {
        groups.push(pieces.slice(at, b));
        at = b;
      }
      const r = run(parserFor(tool, reasoning, lookup, c.prompt), groups);
      assert.deepEqual(r.out, oneShot.out);
      checkDeltas(r.deltas, markers);
    }),
    { numRuns: 40, seed: 10 },
  );
}

describe('tool-call and reasoning parsers on recorded outputs', () => {
  it('hermes + qwen3 reasoning, on the real Qwen3 tokenizer (markers matched on token ids)', {
    skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json'),
  }, async () => {
    const tok = loadTokenizer(sharedPath('qwen3-tokenizer'));
    const lookup = (t: string) => tok.addedTokenId(t);
    assert.equal(lookup('<tool_call>'), 151657);
    for (const c of HERMES) propertyCheck('hermes', 'qwen3', lookup, c, await tokenPieces(tok, c.raw));
    // Without a token-id lookup (text matching only) the result is the same.
    for (const c of HERMES) propertyCheck('hermes', 'qwen3', null, c, charPieces(c.raw));
  });

  it('hermes: "<tool_call>" spelled with ordinary tokens is text, not a call', () => {
    const lookup = (t: string) => (t === '<tool_call>' ? 151657 : t === '</tool_call>' ? 151658 : null);
    const raw = '<tool_call>{"name": "x", "arguments": {}}</tool_call>';
    const r = run(parserFor('hermes', null, lookup), [[{ text: raw, ids: [27, 14172, 28, 29] }]]);
    assert.equal(r.out.content, raw);
    assert.equal(r.out.toolCalls.length, 0);
  });

  it('llama3_json, on the real Llama 3 tokenizer', { skip: skipUnlessShared('llama3-tokenizer/tokenizer.json') }, async () => {
    const tok = loadTokenizer(sharedPath('llama3-tokenizer'));
    for (const c of LLAMA3) propertyCheck('llama3_json', null, (t) => tok.addedTokenId(t), c, await tokenPieces(tok, c.raw));
  });

  it('mistral, split at every character', () => {
    for (const c of MISTRAL) propertyCheck('mistral', null, null, c, charPieces(c.raw));
  });

  it('parallel_tool_calls: false keeps only the first call', () => {
    const c = HERMES[1]!;
    const p = new ChatOutputParser({ toolParser: 'hermes', reasoningParser: null, maxCalls: 1, newCallId: () => 'call_x' });
    const r = run(p, [charPieces(c.raw)]);
    assert.deepEqual(
      r.out.toolCalls.map((t) => t.name),
      ['get_weather'],
    );
    assert.equal(r.out.content, 'Let me check both.');
  });

  it('reasoning tokens are counted on token ids (think tags included)', {
    skip: skipUnlessShared('qwen3-tokenizer/tokenizer.json'),
  }, async () => {
    const tok = loadTokenizer(sharedPath('qwen3-tokenizer'));
    const raw = '<think>\nabc def\n</think>\n\nHello there';
    const ids = await tok.encode(raw, { addSpecialTokens: false });
    const closeAt = ids.indexOf(151668);
    const p = new ChatOutputParser({ toolParser: null, reasoningParser: 'qwen3', singleTokenId: (t) => tok.addedTokenId(t) });
    const det = new IncrementalDetokenizer(tok, { skipSpecialTokens: false });
    const deltas: OutputDelta[] = [];
    for (const id of ids) deltas.push(...p.push(det.push(id), [id]));
    deltas.push(...p.finish());
    const out = foldDeltas(emptyParsedOutput(), deltas);
    assert.equal(out.reasoning, 'abc def');
    assert.equal(out.content, 'Hello there');
    assert.equal(p.numReasoningTokens, closeAt + 1);
  });
});
