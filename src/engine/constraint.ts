// Constraint: what a request's output must match, enforced token by token by the grammar engine
// (engine/grammar/, over xgrammar). Pure data on SamplingParams.constraint; the server maps
// response_format / tool_choice / text.format onto it. Also the canonical key compiled grammars are
// cached under. Never compiles anything itself.
import { createHash } from 'node:crypto';

/** A JSON Schema (draft 2020-12 subset; engine/grammar/schema-support.ts lists what is enforced). */
export type JsonSchema = boolean | { readonly [keyword: string]: unknown };

/**
 * xgrammar's structural-tag formats (the JSON it accepts; see @mlc-ai/web-xgrammar
 * lib/structural_tag.d.ts). json_schema contents go through the same keyword check as json_schema
 * constraints. For tool calling: `triggered_tags` lets free text run until a trigger (e.g.
 * "<tool_call>") and then forces one of the tags (tool_choice auto); a `tag` (or an `or` of tags, or
 * `tags_with_separator` with at_least_one) is the whole output, so a call is required (required /
 * named). A tag's begin may start with a marker token even where the tokenizer marks it special
 * (grammar-vocab.ts GRAMMAR_VISIBLE_SPECIALS); other special tokens are never allowed.
 */
export type StructuralTagFormat =
  | { readonly type: 'any_text' }
  | { readonly type: 'const_string'; readonly value: string }
  | { readonly type: 'json_schema'; readonly json_schema: JsonSchema }
  | { readonly type: 'qwen_xml_parameter'; readonly json_schema: JsonSchema }
  | { readonly type: 'grammar'; readonly grammar: string }
  | { readonly type: 'regex'; readonly pattern: string }
  | { readonly type: 'sequence'; readonly elements: readonly StructuralTagFormat[] }
  | { readonly type: 'or'; readonly elements: readonly StructuralTagFormat[] }
  | StructuralTag
  | {
      readonly type: 'triggered_tags';
      readonly triggers: readonly string[];
      readonly tags: readonly StructuralTag[];
      readonly at_least_one?: boolean;
      readonly stop_after_first?: boolean;
    }
  | {
      readonly type: 'tags_with_separator';
      readonly tags: readonly StructuralTag[];
      readonly separator: string;
      readonly at_least_one?: boolean;
      readonly stop_after_first?: boolean;
    };

export interface StructuralTag {
  readonly type: 'tag';
  readonly begin: string;
  readonly content: StructuralTagFormat;
  readonly end: string;
}

export type Constraint =
  /** Any JSON object (OpenAI response_format json_object). */
  | { readonly type: 'json_object' }
  /**
   * Output matches the schema. strict is recorded but enforcement is the same either way: the
   * grammar always forbids properties the schema does not declare unless additionalProperties
   * allows them (OpenAI strict semantics), so every finished output validates against the schema.
   */
  | { readonly type: 'json_schema'; readonly schema: JsonSchema; readonly strict?: boolean; readonly name?: string }
  /** Output matches an xgrammar structural tag (tool calls). */
  | { readonly type: 'structural_tag'; readonly format: StructuralTagFormat }
  /** Output matches an EBNF grammar (xgrammar dialect; root rule `root` unless named). */
  | { readonly type: 'ebnf'; readonly grammar: string; readonly rootRule?: string }
  /** Output matches a regular expression (xgrammar dialect, whole output). */
  | { readonly type: 'regex'; readonly pattern: string };

export type ConstraintType = Constraint['type'];

/** JSON with object keys sorted: equal constraints give equal text whatever the key order. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/**
 * The key compiled grammars are cached under: sha256 of the canonical JSON of what the grammar
 * depends on (name and strict do not change the grammar, so they are left out).
 */
export function constraintKey(c: Constraint): string {
  const grammarPart = c.type === 'json_schema' ? { type: c.type, schema: c.schema } : c;
  return createHash('sha256').update(canonicalJson(grammarPart)).digest('hex');
}
