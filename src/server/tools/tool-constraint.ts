// tool_choice -> grammar constraint (xgrammar structural tags, enforced token by token by the
// engine), so a call is always well formed: `required` and a named function force one or more
// call tags with the tools' argument schemas; `auto` lets free text run and forces a complete call
// once one of the format's triggers (e.g. "<tool_call>") appears. The tag text is each parser's own format.

import type { Constraint, StructuralTag, StructuralTagFormat } from '../../engine/constraint.js';
import type { ToolCallParserName } from './parser-select.js';
import type { FunctionTool, ToolRequest } from './tool-request.js';

interface CallFormat {
  /** Text before the arguments of a call to `name`, and after them. */
  begin(name: string): string;
  readonly end: string;
  /** Between two calls (xgrammar refuses an empty separator: formats without one use `list`). */
  readonly separator: string;
  /** What starts every call (auto mode waits for it). */
  readonly trigger: string;
  /** auto: markers that may also open a call (tags `prefix + begin(name)`, each its own trigger). */
  readonly prefixes?: readonly string[];
  /** required / named: the calls as one list `open call, call close` (Mistral's array after [TOOL_CALLS]). */
  readonly list?: CallList;
}

interface CallList {
  readonly open: string;
  begin(name: string): string;
  readonly end: string;
  readonly separator: string;
  readonly close: string;
}

const FORMATS: Readonly<Record<ToolCallParserName, CallFormat>> = {
  hermes: { begin: (n) => `<tool_call>\n{"name": "${n}", "arguments": `, end: '}\n</tool_call>', separator: '\n', trigger: '<tool_call>' },
  // Llama 3.1 writes custom calls as bare JSON, optionally after <|python_tag|>.
  llama3_json: {
    begin: (n) => `{"name": "${n}", "parameters": `,
    end: '}',
    separator: '; ',
    trigger: '{"name": "',
    prefixes: ['<|python_tag|>'],
  },
  mistral: {
    begin: (n) => `[TOOL_CALLS][{"name": "${n}", "arguments": `,
    end: '}]',
    separator: '',
    trigger: '[TOOL_CALLS]',
    list: { open: '[TOOL_CALLS][', begin: (n) => `{"name": "${n}", "arguments": `, end: '}', separator: ', ', close: ']' },
  },
};

function tag(begin: string, t: FunctionTool, end: string): StructuralTag {
  return { type: 'tag', begin, content: { type: 'json_schema', json_schema: t.parameters }, end };
}

/** The constraint enforcing tool_choice for this parser's format; null when nothing is enforced (none). */
export function toolConstraint(tools: ToolRequest, parser: ToolCallParserName): Constraint | null {
  const f = FORMATS[parser];
  const choice = tools.choice;
  if (choice.kind === 'none') return null;
  const once = !tools.parallel;
  let format: StructuralTagFormat;
  if (choice.kind === 'auto') {
    const prefixes = f.prefixes ?? [];
    const tags = tools.tools.flatMap((t) => ['', ...prefixes].map((p) => tag(p + f.begin(t.name), t, f.end)));
    format = { type: 'triggered_tags', triggers: [f.trigger, ...prefixes], tags, at_least_one: false, stop_after_first: once };
  } else {
    const chosen = choice.kind === 'function' ? tools.tools.filter((t) => t.name === choice.name) : tools.tools;
    const l = f.list;
    if (l === undefined) {
      const tags = chosen.map((t) => tag(f.begin(t.name), t, f.end));
      format = { type: 'tags_with_separator', tags, separator: f.separator, at_least_one: true, stop_after_first: once };
    } else {
      const tags = chosen.map((t) => tag(l.begin(t.name), t, l.end));
      const calls: StructuralTagFormat = {
        type: 'tags_with_separator',
        tags,
        separator: l.separator,
        at_least_one: true,
        stop_after_first: once,
      };
      // A tag around the list (xgrammar refuses tags_with_separator inside a sequence).
      format = { type: 'tag', begin: l.open, content: calls, end: l.close };
    }
  }
  return { type: 'structural_tag', format };
}
