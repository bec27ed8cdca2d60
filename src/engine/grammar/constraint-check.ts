// Everything about a Constraint that can be decided before compiling: its shape, the keywords of
// every JSON schema in it (schema-support.ts), the schema's validity as JSON Schema 2020-12 with
// resolvable $refs (ajv), and the validator of finished outputs. Synchronous, so a bad request is a
// 400 before it is queued. The ajv validators are cached by constraintKey().
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { TokenmillError } from '../../util/errors.js';
import { constraintKey, type Constraint, type JsonSchema, type StructuralTagFormat } from '../constraint.js';
import { checkSchemaSupport } from './schema-support.js';

// ajv and ajv-formats are CommonJS: load them through require so their default exports are plain.
const require = createRequire(import.meta.url);
type AjvCtor = new (opts: Record<string, unknown>) => { compile(schema: unknown): ValidateFunction };
const Ajv2020 = (require('ajv/dist/2020') as { default: AjvCtor }).default;
const addFormats = (require('ajv-formats') as { default: (ajv: unknown) => void }).default;

const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
addFormats(ajv);

/** Most compiled validators kept (least recently used evicted). */
const VALIDATOR_CACHE_ENTRIES = 512;
const validators = new Map<string, ValidateFunction>();

const MAX_TEXT_GRAMMAR_BYTES = 32 * 1024;

function invalid(param: string, msg: string, cause?: unknown): TokenmillError {
  return new TokenmillError('invalid_schema', msg, { param, cause });
}

/** The ajv validator of a schema (compiled once per schema); invalid_schema when ajv rejects it. */
export function schemaValidator(schema: JsonSchema, param = 'response_format'): ValidateFunction {
  const key = constraintKey({ type: 'json_schema', schema });
  let v = validators.get(key);
  if (v !== undefined) {
    validators.delete(key);
    validators.set(key, v);
    return v;
  }
  try {
    // Schemas are read as the 2020-12 subset schema-support.ts allows, whatever $schema they name
    // (zod-to-json-schema writes draft-07's URL, which Ajv2020 does not carry).
    v = ajv.compile(typeof schema === 'object' && '$schema' in schema ? { ...schema, $schema: undefined } : schema);
  } catch (e) {
    throw invalid(param, `the JSON schema is not valid: ${(e as Error).message}`, e);
  }
  validators.set(key, v);
  if (validators.size > VALIDATOR_CACHE_ENTRIES) validators.delete(validators.keys().next().value as string);
  return v;
}

function checkJsonSchema(schema: unknown, param: string): void {
  if (typeof schema !== 'boolean' && (schema === null || typeof schema !== 'object' || Array.isArray(schema))) {
    throw invalid(param, 'the JSON schema must be an object (or a boolean)');
  }
  checkSchemaSupport(schema as JsonSchema, { param });
  schemaValidator(schema as JsonSchema, param);
}

function checkText(v: unknown, what: string, param: string): void {
  if (typeof v !== 'string' || v.length === 0) throw invalid(param, `${what} must be a non-empty string`);
  if (v.length > MAX_TEXT_GRAMMAR_BYTES)
    throw new TokenmillError('schema_too_large', `${what} is ${v.length} bytes; the limit is ${MAX_TEXT_GRAMMAR_BYTES}`, { param });
}

function checkFormat(f: StructuralTagFormat, param: string, depth: number): void {
  if (depth > 16) throw new TokenmillError('schema_too_large', 'the structural tag nests deeper than 16 levels', { param });
  const o = f as unknown as Record<string, unknown>;
  if (o === null || typeof o !== 'object') throw invalid(param, 'a structural tag format must be an object');
  switch (f.type) {
    case 'any_text':
      return;
    case 'const_string':
      if (typeof f.value !== 'string') throw invalid(param, 'const_string needs a string value');
      return;
    case 'json_schema':
    case 'qwen_xml_parameter':
      checkJsonSchema(f.json_schema, param);
      return;
    case 'grammar':
      checkText(f.grammar, 'a structural tag grammar', param);
      return;
    case 'regex':
      checkText(f.pattern, 'a structural tag regex', param);
      return;
    case 'sequence':
    case 'or':
      if (!Array.isArray(f.elements) || f.elements.length === 0) throw invalid(param, `${f.type} needs a non-empty elements list`);
      for (const e of f.elements) checkFormat(e, param, depth + 1);
      return;
    case 'tag':
      if (typeof f.begin !== 'string' || typeof f.end !== 'string') throw invalid(param, 'a tag needs string begin and end');
      checkFormat(f.content, param, depth + 1);
      return;
    case 'triggered_tags':
    case 'tags_with_separator':
      if (!Array.isArray(f.tags) || f.tags.length === 0) throw invalid(param, `${f.type} needs a non-empty tags list`);
      if (
        f.type === 'triggered_tags' &&
        (!Array.isArray(f.triggers) || f.triggers.length === 0 || f.triggers.some((t) => typeof t !== 'string' || t.length === 0))
      ) {
        throw invalid(param, 'triggered_tags needs non-empty string triggers');
      }
      for (const t of f.tags) checkFormat(t, param, depth + 1);
      return;
    default:
      throw invalid(param, `unknown structural tag format type '${String(o.type)}'`);
  }
}

/**
 * Throw invalid_schema / unsupported_schema_keyword / schema_too_large for a constraint the engine
 * cannot compile or enforce. param names the request field it came from (the 400's `param`).
 */
export function checkConstraint(c: Constraint, param = c.type === 'structural_tag' ? 'tools' : 'response_format'): Constraint {
  const o = c as unknown as Record<string, unknown>;
  if (o === null || typeof o !== 'object') throw invalid(param, 'the constraint must be an object');
  switch (c.type) {
    case 'json_object':
      return c;
    case 'json_schema':
      checkJsonSchema(c.schema, param);
      return c;
    case 'structural_tag':
      checkFormat(c.format, param, 0);
      return c;
    case 'ebnf':
      checkText(c.grammar, 'the EBNF grammar', param);
      return c;
    case 'regex':
      checkText(c.pattern, 'the regex', param);
      return c;
    default:
      throw invalid(param, `unknown constraint type '${String(o.type)}'`);
  }
}

export type OutputCheck = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

/**
 * Validate a finished output against a JSON constraint (json_object: a JSON object; json_schema:
 * ajv against the schema). Other constraint types have no JSON meaning: ok with value undefined.
 */
export function checkOutput(c: Constraint, text: string): OutputCheck {
  if (c.type !== 'json_object' && c.type !== 'json_schema') return { ok: true, value: undefined };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `the output is not valid JSON: ${(e as Error).message}` };
  }
  if (c.type === 'json_object') {
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? { ok: true, value }
      : { ok: false, reason: 'the output is not a JSON object' };
  }
  const v = schemaValidator(c.schema);
  if (v(value)) return { ok: true, value };
  const e = v.errors?.[0];
  return { ok: false, reason: `the output does not match the schema: ${e ? `${e.instancePath || '/'} ${e.message ?? ''}` : 'invalid'}` };
}
