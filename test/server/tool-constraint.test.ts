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

const tools = [
  { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
  { type: 'function' as const, function: { name: 'get_time' } },
];

function formatOf(choice: Parameters<typeof parseToolRequest>[0]['tool_choice'], parallel: boolean, parser: (typeof TOOL_CALL_PARSERS)[number]): StructuralTagFormat {
  const c = toolConstraint(parseToolRequest({ tools, tool_choice: choice, parallel_tool_calls: parallel })!, parser);
  assert.ok(c !== null && c.type === 'structural_tag');
  return c.format;
}

describe('tool-call grammar (structural tags)', () => {
  for (const parser of TOOL_CALL_PARSERS) {
    it(`${parser}: calls written the way the grammar writes them parse back`, () => {
      const f = formatOf('required', true, parser);
      assert.ok(f.type === 'tags_with_separator');
      const tag = (name: string): StructuralTag => f.tags.find((t) => t.begin.includes(`"${name}"`))!;
      const text = tag('get_weather').begin + '{"city": "Paris"}' + tag('get_weather').end + f.separator + tag('get_time').begin + '{}' + tag('get_time').end;
      for (const ids of [false, true]) {
        const p = new ChatOutputParser({ toolParser: parser, reasoningParser: null, newCallId: () => 'call_0', toolMarkersById: ids });
        const out = foldDeltas(emptyParsedOutput(), [...p.push(text, []), ...p.finish()]);
        assert.deepEqual(out.toolCalls.map((c) => [c.name, c.arguments]), [['get_weather', '{"city": "Paris"}'], ['get_time', '{}']], text);
        assert.equal(out.content, '');
      }
    });
  }

  it('required: every tool, at least one call; named: that tool only; auto: triggered; parallel off: stop after the first', () => {
    const req = formatOf('required', true, 'hermes');
    assert.ok(req.type === 'tags_with_separator' && req.at_least_one === true && req.stop_after_first === false && req.tags.length === 2);
    const named = formatOf({ type: 'function', function: { name: 'get_time' } }, false, 'hermes');
    assert.ok(named.type === 'tags_with_separator' && named.tags.length === 1 && named.tags[0]!.begin.includes('"get_time"') && named.stop_after_first === true);
    assert.deepEqual((named.tags[0]!.content as { json_schema: unknown }).json_schema, { type: 'object', properties: {} }, 'a tool without parameters takes an empty object');
    const auto = formatOf('auto', false, 'hermes');
    assert.ok(auto.type === 'triggered_tags' && auto.triggers[0] === '<tool_call>' && auto.at_least_one === false && auto.stop_after_first === true);
    for (const t of auto.tags) assert.ok(t.begin.startsWith(auto.triggers[0]!), 'every tag starts with the trigger');
    assert.equal(toolConstraint(parseToolRequest({ tools, tool_choice: 'none' })!, 'hermes'), null);
  });
});
