// The grammar that enforces tool_choice writes calls in each parser's own format: text assembled
// from the structural tag (begin + arguments + end, separators between calls) parses back into the
// same calls with every parser, and the choice kinds map to the right tag layout.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StructuralTag, StructuralTagFormat } from '../../src/engine/sampling-params.js';
import { emptyParsedOutput, foldDeltas } from '../../src/server/tools/output-parser.js';
import { ChatOutputParser, TOOL_CALL_PARSERS } from '../../src/server/tools/parser-select.js';
import { toolConstraint } from '../../src/server/tools/tool-constraint.js';
import { parseToolRequest } from '../../src/server/tools/tool-request.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grammarCompilerFor } from '../../src/engine/grammar/grammar-compiler.js';
import { writeSyntheticTokenizer } from '../../src/model/convert/synthetic-tokenizer.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';

const tools = [
  {
    type: 'function' as const,
    function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
  },
  { type: 'function' as const, function: { name: 'get_time' } },
];

function formatOf(
  choice: Parameters<typeof parseToolRequest>[0]['tool_choice'],
  parallel: boolean,
  parser: (typeof TOOL_CALL_PARSERS)[number],
): StructuralTagFormat {
  const c = toolConstraint(parseToolRequest({ tools, tool_choice: choice, parallel_tool_calls: parallel })!, parser);
  assert.ok(c !== null && c.type === 'structural_tag');
  return c.format;
}

describe('tool-call grammar (structural tags)', () => {
  for (const parser of TOOL_CALL_PARSERS) {
    it(`${parser}: calls written the way the grammar writes them parse back`, () => {
      const outer = formatOf('required', true, parser);
      // Mistral's calls are one array: [TOOL_CALLS][ call, call ]; the others are tags with separators.
      const [open, f, close] = outer.type === 'tag' ? [outer.begin, outer.content, outer.end] : ['', outer, ''];
      assert.ok(f?.type === 'tags_with_separator' && f.separator !== '', 'xgrammar refuses an empty separator');
      const tag = (name: string): StructuralTag => f.tags.find((t) => t.begin.includes(`"${name}"`))!;
      const text =
        open +
        tag('get_weather').begin +
        '{"city": "Paris"}' +
        tag('get_weather').end +
        f.separator +
        tag('get_time').begin +
        '{}' +
        tag('get_time').end +
        close;
      for (const ids of [false, true]) {
        const p = new ChatOutputParser({ toolParser: parser, reasoningParser: null, newCallId: () => 'call_0', toolMarkersById: ids });
        const out = foldDeltas(emptyParsedOutput(), [...p.push(text, []), ...p.finish()]);
        assert.deepEqual(
          out.toolCalls.map((c) => [c.name, c.arguments]),
          [
            ['get_weather', '{"city": "Paris"}'],
            ['get_time', '{}'],
          ],
          text,
        );
        assert.equal(out.content, '');
      }
    });
  }

  it('required: every tool, at least one call; named: that tool only; auto: triggered; parallel off: stop after the first', () => {
    const req = formatOf('required', true, 'hermes');
    assert.ok(req.type === 'tags_with_separator' && req.at_least_one === true && req.stop_after_first === false && req.tags.length === 2);
    const named = formatOf({ type: 'function', function: { name: 'get_time' } }, false, 'hermes');
    assert.ok(
      named.type === 'tags_with_separator' &&
        named.tags.length === 1 &&
        named.tags[0]!.begin.includes('"get_time"') &&
        named.stop_after_first === true,
    );
    assert.deepEqual(
      (named.tags[0]!.content as { json_schema: unknown }).json_schema,
      { type: 'object', properties: {} },
      'a tool without parameters takes an empty object',
    );
    const auto = formatOf('auto', false, 'hermes');
    assert.ok(
      auto.type === 'triggered_tags' && auto.triggers[0] === '<tool_call>' && auto.at_least_one === false && auto.stop_after_first === true,
    );
    for (const t of auto.tags) assert.ok(t.begin.startsWith(auto.triggers[0]!), 'every tag starts with the trigger');
    const llama = formatOf('auto', true, 'llama3_json');
    assert.ok(llama.type === 'triggered_tags');
    assert.deepEqual(llama.triggers, ['{"name": "', '<|python_tag|>'], 'Llama 3.1 calls may open with <|python_tag|>');
    for (const t of llama.tags) assert.ok(llama.triggers.some((tr) => t.begin.startsWith(tr)));
    const p = new ChatOutputParser({ toolParser: 'llama3_json', reasoningParser: null, newCallId: () => 'call_0', toolMarkersById: false });
    const tagged = llama.tags.find((t) => t.begin.startsWith('<|python_tag|>') && t.begin.includes('get_time'))!;
    const out = foldDeltas(emptyParsedOutput(), [...p.push(tagged.begin + '{}' + tagged.end, []), ...p.finish()]);
    assert.deepEqual(
      out.toolCalls.map((c) => [c.name, c.arguments]),
      [['get_time', '{}']],
    );
    assert.equal(toolConstraint(parseToolRequest({ tools, tool_choice: 'none' })!, 'hermes'), null);
  });

  it("every parser's formats compile in xgrammar, for every tool_choice kind", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tm-toolc-'));
    try {
      writeSyntheticTokenizer(dir, 400, { extraSpecialTokens: ['[TOOL_CALLS]', '<|python_tag|>', '<tool_call>', '</tool_call>'] });
      const cache = await grammarCompilerFor(loadTokenizer(dir), 400, [3]);
      for (const parser of TOOL_CALL_PARSERS) {
        for (const choice of ['auto', 'required', { type: 'function' as const, function: { name: 'get_weather' } }] as const) {
          for (const parallel of [false, true]) {
            const c = toolConstraint(parseToolRequest({ tools, tool_choice: choice, parallel_tool_calls: parallel })!, parser)!;
            // A format xgrammar refuses is a typed 400 at request time: name the case.
            const what = `${parser} ${JSON.stringify(choice)} parallel ${parallel}`;
            await cache.compile(c).catch((e: unknown) => assert.fail(`${what}: ${String(e)}`));
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
