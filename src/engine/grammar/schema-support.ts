// What the grammar engine can enforce of a JSON Schema, checked before anything is compiled: every
// keyword is either enforced by xgrammar's schema converter (checked keyword by keyword against its
// grammar output), an annotation (no effect on validity), or a 400 naming the keyword and its path:
// never a silent drop. Also the compile-time bound (size, depth, subschema count), since compiling
// runs on the engine's thread. Pure; no xgrammar here.
import { TokenmillError } from '../../util/errors.js';
import type { JsonSchema } from '../constraint.js';

/** Compile-time bound: schema JSON text (bytes of UTF-16 code units, close enough to UTF-8 here). */
export const MAX_SCHEMA_BYTES = 32 * 1024;
/** Compile-time bound: nesting of subschemas. */
export const MAX_SCHEMA_DEPTH = 24;
/** Compile-time bound: number of subschemas (each becomes grammar rules). */
export const MAX_SUBSCHEMAS = 1000;

/** Keywords that never change which instances are valid. */
const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly', '$anchor']);

/** Keywords xgrammar 0.1.27 enforces (each seen to change the generated grammar). */
const ENFORCED = new Set([
  'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'minItems', 'maxItems',
  'anyOf', 'allOf', '$ref', '$defs', 'definitions', 'minLength', 'maxLength', 'pattern', 'format', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', 'minProperties', 'patternProperties', 'propertyNames', 'unevaluatedProperties',
  'unevaluatedItems',
]);

/** Why the others are refused (shown in the 400). */
const REFUSED_WHY: Readonly<Record<string, string>> = {
  oneOf: 'the grammar cannot enforce "exactly one"; use anyOf',
  not: 'negation cannot be enforced by the grammar',
  multipleOf: 'the grammar engine ignores it',
  uniqueItems: 'the grammar engine ignores it',
  contains: 'the grammar engine ignores it',
  maxProperties: 'the grammar engine ignores it',
  dependentRequired: 'the grammar engine ignores it',
  dependentSchemas: 'the grammar engine ignores it',
  if: 'conditional schemas are not enforced',
  then: 'conditional schemas are not enforced',
  else: 'conditional schemas are not enforced',
};

/** Widest integer range (maximum - minimum + 1) enforced; it is compiled as an enum of its values. */
export const MAX_INTEGER_RANGE = 1024;
const NUMERIC_BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] as const;

/** string formats xgrammar turns into a grammar and ajv-formats checks the same way. */
export const SUPPORTED_FORMATS: ReadonlySet<string> = new Set(['email', 'date', 'time', 'date-time', 'uuid', 'ipv4', 'ipv6', 'hostname', 'uri']);

const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions']);
const SCHEMA_VALUES = new Set(['additionalProperties', 'items', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems']);
const SCHEMA_LISTS = new Set(['prefixItems', 'anyOf', 'allOf']);

export interface SchemaCheckOptions {
  /** The request field the schema came from (the 400's `param`), e.g. 'response_format'. */
  readonly param: string;
}

function unsupported(param: string, keyword: string, path: string, why: string): TokenmillError {
  return new TokenmillError('unsupported_schema_keyword',
    `JSON schema keyword '${keyword}' at ${path} cannot be enforced by the grammar engine (${why}); remove it or rewrite the schema.`,
    { param, details: { keyword, path } });
}

function invalid(param: string, msg: string): TokenmillError {
  return new TokenmillError('invalid_schema', msg, { param });
}

/** Throw unsupported_schema_keyword / invalid_schema / schema_too_large; return the schema. */
export function checkSchemaSupport(schema: JsonSchema, opts: SchemaCheckOptions): JsonSchema {
  const { param } = opts;
  let text: string;
  try {
    text = JSON.stringify(schema);
  } catch (e) {
    throw invalid(param, `the JSON schema cannot be serialized: ${(e as Error).message}`);
  }
  if (text === undefined) throw invalid(param, 'the JSON schema must be an object or a boolean');
  if (text.length > MAX_SCHEMA_BYTES) {
    throw new TokenmillError('schema_too_large', `the JSON schema is ${text.length} bytes; the limit is ${MAX_SCHEMA_BYTES} (compile-time bound)`, { param, details: { sizeBytes: text.length, maxBytes: MAX_SCHEMA_BYTES } });
  }
  let count = 0;
  const walk = (node: unknown, path: string, depth: number): void => {
    if (typeof node === 'boolean') return;
    if (node === null || typeof node !== 'object' || Array.isArray(node)) throw invalid(param, `the subschema at ${path} must be an object or a boolean`);
    if (++count > MAX_SUBSCHEMAS) {
      throw new TokenmillError('schema_too_large', `the JSON schema has more than ${MAX_SUBSCHEMAS} subschemas (compile-time bound)`, { param, details: { maxSubschemas: MAX_SUBSCHEMAS } });
    }
    if (depth > MAX_SCHEMA_DEPTH) {
      throw new TokenmillError('schema_too_large', `the JSON schema nests deeper than ${MAX_SCHEMA_DEPTH} levels at ${path} (compile-time bound)`, { param, details: { maxDepth: MAX_SCHEMA_DEPTH } });
    }
    const o = node as Record<string, unknown>;
    checkNumericBounds(o, path, param);
    for (const [k, v] of Object.entries(o)) {
      const at = `${path}/${escapePointer(k)}`;
      if (ANNOTATIONS.has(k)) continue;
      if (!ENFORCED.has(k)) throw unsupported(param, k, path, REFUSED_WHY[k] ?? 'not a keyword the grammar engine knows');
      if (k === 'format') {
        if (typeof v !== 'string') throw invalid(param, `'format' at ${path} must be a string`);
        if (!SUPPORTED_FORMATS.has(v)) throw unsupported(param, `format: ${v}`, path, `supported formats: ${[...SUPPORTED_FORMATS].join(', ')}`);
      } else if (k === 'allOf') {
        if (!Array.isArray(v) || v.length !== 1) throw unsupported(param, 'allOf', path, 'only a single-entry allOf is enforced');
      } else if (k === '$ref') {
        if (typeof v !== 'string' || !v.startsWith('#')) throw unsupported(param, '$ref', path, 'only local references (#/...) are resolved');
      }
      if (SCHEMA_MAPS.has(k)) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(param, `'${k}' at ${path} must be an object of subschemas`);
        for (const [name, sub] of Object.entries(v as Record<string, unknown>)) walk(sub, `${at}/${escapePointer(name)}`, depth + 1);
      } else if (SCHEMA_VALUES.has(k)) {
        walk(v, at, depth + 1);
      } else if (SCHEMA_LISTS.has(k)) {
        if (!Array.isArray(v) || v.length === 0) throw invalid(param, `'${k}' at ${path} must be a non-empty array of subschemas`);
        v.forEach((sub, i) => walk(sub, `${at}/${i}`, depth + 1));
      }
    }
  };
  walk(schema, '#', 0);
  return schema;
}

/**
 * xgrammar 0.1.27 builds numeric ranges wrongly (checked value by value: integer maximum 120
 * accepts 121-129, minimum 7 accepts 1-6, number maximum 1 accepts 1.5), so bounds are enforced
 * only where tokenmill makes them exact: an integer with both bounds spanning at most
 * MAX_INTEGER_RANGE values (rewritten to an enum by grammarSchema()), or an integer that is only
 * non-negative / positive (minimum 0 or 1, exclusiveMinimum -1 or 0: correct in xgrammar).
 */
function checkNumericBounds(o: Record<string, unknown>, path: string, param: string): void {
  const present = NUMERIC_BOUNDS.filter((k) => o[k] !== undefined);
  if (present.length === 0) return;
  for (const k of present) if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw invalid(param, `'${k}' at ${path} must be a finite number`);
  const first = present[0]!;
  if (o.type !== 'integer') throw unsupported(param, first, path, 'numeric bounds are enforced only on {"type": "integer"} (the grammar engine builds other ranges wrongly)');
  const r = integerRange(o);
  if (r.lo !== null && r.hi !== null) {
    if (r.hi - r.lo + 1 > MAX_INTEGER_RANGE) throw unsupported(param, first, path, `integer ranges of at most ${MAX_INTEGER_RANGE} values are enforced; this one spans ${r.hi - r.lo + 1}`);
    if (r.hi < r.lo) throw invalid(param, `the integer range at ${path} is empty`);
    return;
  }
  if (r.hi === null && (r.lo === 0 || r.lo === 1)) return;
  throw unsupported(param, first, path, `a one-sided integer bound is enforced only as minimum 0 or 1; give both bounds (at most ${MAX_INTEGER_RANGE} values)`);
}

/** Inclusive integer bounds of a subschema (null: unbounded on that side). */
function integerRange(o: Record<string, unknown>): { lo: number | null; hi: number | null } {
  let lo: number | null = null;
  let hi: number | null = null;
  if (typeof o.minimum === 'number') lo = Math.ceil(o.minimum);
  if (typeof o.exclusiveMinimum === 'number') lo = Math.max(lo ?? -Infinity, Math.floor(o.exclusiveMinimum) + 1);
  if (typeof o.maximum === 'number') hi = Math.floor(o.maximum);
  if (typeof o.exclusiveMaximum === 'number') hi = Math.min(hi ?? Infinity, Math.ceil(o.exclusiveMaximum) - 1);
  return { lo, hi };
}

/**
 * The schema given to xgrammar (after checkSchemaSupport): bounded integer ranges become enums of
 * their values, one-sided bounds become minimum 0/1. Validation of outputs uses the original.
 */
export function grammarSchema(schema: JsonSchema): JsonSchema {
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node === null || typeof node !== 'object') return node;
    const o = node as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k === 'enum' || k === 'const' || k === 'default' || k === 'examples') out[k] = v;
      else if (SCHEMA_MAPS.has(k) && v !== null && typeof v === 'object') out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([n, sub]) => [n, rewrite(sub)]));
      else if (SCHEMA_VALUES.has(k) || SCHEMA_LISTS.has(k)) out[k] = rewrite(v);
      else out[k] = v;
    }
    if (o.type === 'integer' && NUMERIC_BOUNDS.some((k) => o[k] !== undefined)) {
      for (const k of NUMERIC_BOUNDS) delete out[k];
      const { lo, hi } = integerRange(o);
      if (lo !== null && hi !== null) {
        const values = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
        out.enum = Array.isArray(o.enum) ? (o.enum as unknown[]).filter((v) => typeof v === 'number' && v >= lo && v <= hi) : values;
      } else if (lo !== null) out.minimum = lo;
    }
    return out;
  };
  return rewrite(schema) as JsonSchema;
}

function escapePointer(s: string): string {
  return s.replaceAll('~', '~0').replaceAll('/', '~1');
}
