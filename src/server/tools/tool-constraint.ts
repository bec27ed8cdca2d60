// tool_choice -> grammar constraint (xgrammar structural tags, enforced token by token by the
// engine), so a call is always well formed: `required` and a named function force one or more
// call tags with the tools' argument schemas; `auto` lets free text run and forces a complete call
// once the format's trigger (e.g. "<tool_call>") appears. The tag text is each parser's own format.

import type { Constraint, StructuralTag, StructuralTagFormat } from '../../engine/constraint.js';
import type { ToolCallParserName } from './parser-select.js';
import type { FunctionTool, ToolRequest } from './tool-request.js';

interface CallFormat {
  /** Text before the arguments of a call to `name`, and after them. */
  begin(name: string): string;
  readonly end: string;
  /** Between two calls. */
  readonly separator: string;
  /** What starts every call (auto mode waits for it). */
  readonly trigger: string;
}

const FORMATS: Readonly<Record<ToolCallParserName, CallFormat>> = {
  hermes: { begin: (n) => `<tool_call>\n{"name": "${n}", "arguments": `, end: '}\n</tool_call>', separator: '\n', trigger: '<tool_call>' },
  llama3_json: { begin: (n) => `{"name": "${n}", "parameters": `, end: '}', separator: '; ', trigger: '{"name": "' },
  mistral: { begin: (n) => `[TOOL_CALLS][{"name": "${n}", "arguments": `, end: '}]', separator: '', trigger: '[TOOL_CALLS]' },
};

function tag(f: CallFormat, t: FunctionTool): StructuralTag {
  return { type: 'tag', begin: f.begin(t.name), content: { type: 'json_schema', json_schema: t.parameters }, end: f.end };
}

/** The constraint enforcing tool_choice for this parser's format; null when nothing is enforced (none). */
export function toolConstraint(tools: ToolRequest, parser: ToolCallParserName): Constraint | null {
  const f = FORMATS[parser];
  const choice = tools.choice;
  if (choice.kind === 'none') return null;
  const once = !tools.parallel;
  let format: StructuralTagFormat;
  if (choice.kind === 'auto') {
    format = { type: 'triggered_tags', triggers: [f.trigger], tags: tools.tools.map((t) => tag(f, t)), at_least_one: false, stop_after_first: once };
  } else {
    const chosen = choice.kind === 'function' ? tools.tools.filter((t) => t.name === choice.name) : tools.tools;
    format = { type: 'tags_with_separator', tags: chosen.map((t) => tag(f, t)), separator: f.separator, at_least_one: true, stop_after_first: once };
  }
  return { type: 'structural_tag', format };
}
