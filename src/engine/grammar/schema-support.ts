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
const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  '$schema',
  '$id',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$anchor',
]);

/** Keywords xgrammar 0.1.27 enforces (each seen to change the generated grammar). */
const ENFORCED = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'anyOf',
  'allOf',
  '$ref',
  '$defs',
  'definitions',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minProperties',
  'patternProperties',
  'propertyNames',
  'unevaluatedProperties',
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

const DATE = '[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';

/**
 * String formats, enforced as these patterns (xgrammar's own format grammars are looser than the
 * formats: its date allows 06-31). Each accepts a subset of what ajv-formats accepts: dates stop at
 * the 28th of February, times need a UTC offset (RFC 3339), uuids are lower case.
 */
export const FORMAT_PATTERNS: Readonly<Record<string, string>> = {
  date: `^${DATE}$`,
  time: `^${TIME}$`,
  'date-time': `^${DATE}T${TIME}$`,
  ipv4: `^(${OCTET}\\.){3}${OCTET}$`,
  uuid: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
};
export const SUPPORTED_FORMATS: ReadonlySet<string> = new Set(Object.keys(FORMAT_PATTERNS));

const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions']);
const SCHEMA_VALUES = new Set(['additionalProperties', 'items', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems']);
const SCHEMA_LISTS = new Set(['prefixItems', 'anyOf', 'allOf']);

export interface SchemaCheckOptions {
  /** The request field the schema came from (the 400's `param`), e.g. 'response_format'. */
  readonly param: string;
}

function unsupported(param: string, keyword: string, path: string, why: string): TokenmillError {
  return new TokenmillError(
    'unsupported_schema_keyword',
    `JSON schema keyword '${keyword}' at ${path} cannot be enforced by the grammar engine (${why}); remove it or rewrite the schema.`,
    { param, details: { keyword, path } },
  );
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
    throw new TokenmillError(
      'schema_too_large',
      `the JSON schema is ${text.length} bytes; the limit is ${MAX_SCHEMA_BYTES} (compile-time bound)`,
      { param, details: { sizeBytes: text.length, maxBytes: MAX_SCHEMA_BYTES } },
    );
  }
  let count = 0;
  const walk = (node: unknown, path: string, depth: number): void => {
    if (typeof node === 'boolean') return;
    if (node === null || typeof node !== 'object' || Array.isArray(node))
      throw invalid(param, `the subschema at ${path} must be an object or a boolean`);
    if (++count > MAX_SUBSCHEMAS) {
      throw new TokenmillError('schema_too_large', `the JSON schema has more than ${MAX_SUBSCHEMAS} subschemas (compile-time bound)`, {
        param,
        details: { maxSubschemas: MAX_SUBSCHEMAS },
      });
    }
    if (depth > MAX_SCHEMA_DEPTH) {
      throw new TokenmillError(
        'schema_too_large',
        `the JSON schema nests deeper than ${MAX_SCHEMA_DEPTH} levels at ${path} (compile-time bound)`,
        { param, details: { maxDepth: MAX_SCHEMA_DEPTH } },
      );
    }
    const o = node as Record<string, unknown>;
    checkNumericBounds(o, path, param);
    for (const [k, v] of Object.entries(o)) {
      const at = `${path}/${escapePointer(k)}`;
      if (ANNOTATIONS.has(k)) continue;
      if (!ENFORCED.has(k)) throw unsupported(param, k, path, REFUSED_WHY[k] ?? 'not a keyword the grammar engine knows');
      if (k === 'pattern') {
        if (typeof v !== 'string') throw invalid(param, `'pattern' at ${path} must be a string`);
        const why = unsafePattern(v);
        if (why !== null) throw unsupported(param, 'pattern', path, why);
        if (o.minLength !== undefined || o.maxLength !== undefined)
          throw unsupported(param, 'pattern', path, 'pattern together with minLength/maxLength cannot both be enforced');
      } else if (k === 'format') {
        if (typeof v !== 'string') throw invalid(param, `'format' at ${path} must be a string`);
        if (!SUPPORTED_FORMATS.has(v))
          throw unsupported(param, `format: ${v}`, path, `supported formats: ${[...SUPPORTED_FORMATS].join(', ')}`);
        if (o.pattern !== undefined || o.minLength !== undefined || o.maxLength !== undefined)
          throw unsupported(param, 'format', path, 'format together with pattern/minLength/maxLength cannot both be enforced');
      } else if (k === 'allOf') {
        if (!Array.isArray(v) || v.length !== 1) throw unsupported(param, 'allOf', path, 'only a single-entry allOf is enforced');
      } else if (k === '$ref') {
        if (typeof v !== 'string' || !v.startsWith('#'))
          throw unsupported(param, '$ref', path, 'only local references (#/...) are resolved');
      }
      if (SCHEMA_MAPS.has(k)) {
        if (v === null || typeof v !== 'object' || Array.isArray(v))
          throw invalid(param, `'${k}' at ${path} must be an object of subschemas`);
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
  for (const k of present)
    if (typeof o[k] !== 'number' || !Number.isFinite(o[k])) throw invalid(param, `'${k}' at ${path} must be a finite number`);
  const first = present[0]!;
  if (o.type !== 'integer')
    throw unsupported(
      param,
      first,
      path,
      'numeric bounds are enforced only on {"type": "integer"} (the grammar engine builds other ranges wrongly)',
    );
  const r = integerRange(o);
  if (r.lo !== null && r.hi !== null) {
    if (r.hi - r.lo + 1 > MAX_INTEGER_RANGE)
      throw unsupported(
        param,
        first,
        path,
        `integer ranges of at most ${MAX_INTEGER_RANGE} values are enforced; this one spans ${r.hi - r.lo + 1}`,
      );
    if (r.hi < r.lo) throw invalid(param, `the integer range at ${path} is empty`);
    return;
  }
  if (r.hi === null && (r.lo === 0 || r.lo === 1)) return;
  throw unsupported(
    param,
    first,
    path,
    `a one-sided integer bound is enforced only as minimum 0 or 1; give both bounds (at most ${MAX_INTEGER_RANGE} values)`,
  );
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
      else if (SCHEMA_MAPS.has(k) && v !== null && typeof v === 'object')
        out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([n, sub]) => [n, rewrite(sub)]));
      else if (SCHEMA_VALUES.has(k) || SCHEMA_LISTS.has(k)) out[k] = rewrite(v);
      else out[k] = v;
    }
    if ((o.minLength !== undefined || o.maxLength !== undefined) && o.pattern === undefined && o.format === undefined) {
      // xgrammar's length-bounded strings are [^"\\\r\n]{m,n}: they let raw control characters
      // through (invalid JSON). The same bound as a pattern over JSON-safe characters (no escapes).
      delete out.minLength;
      delete out.maxLength;
      const lo = typeof o.minLength === 'number' ? o.minLength : 0;
      const hi = typeof o.maxLength === 'number' ? String(o.maxLength) : '';
      out.pattern = `^${JSON_SAFE_CHAR}{${lo},${hi}}$`;
    }
    if (typeof o.format === 'string' && FORMAT_PATTERNS[o.format] !== undefined) {
      delete out.format;
      out.pattern = FORMAT_PATTERNS[o.format];
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

/** One character a JSON string may hold unescaped (what length-bounded strings are built from). */
const JSON_SAFE_CHAR = '[^"\\\\\\u0000-\\u001f]';

/**
 * Why a pattern cannot be enforced as given, or null. xgrammar compiles the pattern into the
 * characters between the quotes as they are, so a pattern that can match '"', '\\' or a control
 * character would produce invalid JSON: '.', negated classes, \\s \\S \\D \\W, lookarounds and
 * such characters (or ranges over them) are refused. Conservative: a refused pattern may be fine.
 */
export function unsafePattern(p: string): string | null {
  const UNSAFE = "it could match '\"', '\\\\' or a control character, which a JSON string cannot hold unescaped";
  const badCode = (c: number): boolean => c < 0x20 || c === 0x22 || c === 0x5c;
  let i = p.startsWith('^') ? 1 : 0;
  const end = p.endsWith('$') && !p.endsWith('\\$') ? p.length - 1 : p.length;
  /** Reads one (possibly escaped) character at i; returns its code, or -1 for \\d/\\w, or null when unsafe. */
  const readChar = (inClass: boolean): number | null => {
    const ch = p[i]!;
    if (ch !== '\\') {
      i++;
      return ch.codePointAt(0)!;
    }
    const e = p[i + 1];
    i += 2;
    if (e === undefined) return null;
    if (e === 'd' || e === 'w') return -1;
    if (e === 'u' || e === 'x') {
      const len = e === 'u' ? 4 : 2;
      const hex = p.slice(i, i + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) return null;
      i += len;
      return parseInt(hex, 16);
    }
    if (/[A-Za-z0-9]/.test(e)) return null; // \s \S \D \W \b \n \t \0 ... (classes, anchors, controls)
    if (!inClass && e === '-') return 0x2d;
    return e.codePointAt(0)!;
  };
  while (i < end) {
    const ch = p[i]!;
    if (ch === '.') return `'.' in it: ${UNSAFE}`;
    if (ch === '^' || ch === '$') return `an anchor inside it: ${UNSAFE}`;
    if (ch === '(' && p[i + 1] === '?') return 'lookarounds and group modifiers are not enforced';
    if ('()|?*+'.includes(ch)) {
      i++;
      continue;
    }
    if (ch === '{') {
      const m = /^\{\d+(,\d*)?\}/.exec(p.slice(i));
      if (m === null) return 'a malformed {m,n} quantifier';
      i += m[0].length;
      continue;
    }
    if (ch === '[') {
      i++;
      if (p[i] === '^') return `a negated class in it: ${UNSAFE}`;
      while (i < end && p[i] !== ']') {
        const a = readChar(true);
        if (a === null) return UNSAFE;
        if (p[i] === '-' && p[i + 1] !== ']' && a >= 0) {
          i++;
          const b = readChar(true);
          if (b === null || b < 0) return UNSAFE;
          for (const bad of [0x22, 0x5c]) if (a <= bad && bad <= b) return `a range in it: ${UNSAFE}`;
          if (a < 0x20) return UNSAFE;
        } else if (a >= 0 && badCode(a)) return UNSAFE;
      }
      if (p[i] !== ']') return 'an unterminated character class';
      i++;
      continue;
    }
    const c = readChar(false);
    if (c === null || (c >= 0 && badCode(c))) return UNSAFE;
  }
  return null;
}

function escapePointer(s: string): string {
  return s.replaceAll('~', '~0').replaceAll('/', '~1');
}
