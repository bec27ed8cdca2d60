// checkConstraint / checkSchemaSupport: keywords the grammar engine cannot enforce are 400s naming
// the keyword and its path; invalid schemas and oversized ones are 400s; checkOutput validates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConstraint, checkOutput } from '../../src/engine/grammar/constraint-check.js';
import { grammarSchema, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH } from '../../src/engine/grammar/schema-support.js';
import { constraintKey } from '../../src/engine/constraint.js';
import { ERROR_CODES, TokenmillError } from '../../src/util/errors.js';

function rejects(schema: unknown, code: string, includes: string): void {
  assert.throws(
    () => checkConstraint({ type: 'json_schema', schema: schema as Record<string, unknown> }),
    (e: unknown) => {
      assert.ok(e instanceof TokenmillError, String(e));
      assert.equal(e.code, code, e.message);
      assert.ok(e.message.includes(includes), `${e.message} should mention ${includes}`);
      assert.equal(e.param, 'response_format');
      assert.equal(ERROR_CODES[e.code].httpStatus, 400);
      return true;
    },
  );
}

test('keywords the grammar cannot enforce are refused by name and path', () => {
  rejects(
    { type: 'object', properties: { a: { oneOf: [{ type: 'string' }, { type: 'integer' }] } } },
    'unsupported_schema_keyword',
    "'oneOf' at #/properties/a",
  );
  rejects({ type: 'number', multipleOf: 3 }, 'unsupported_schema_keyword', "'multipleOf' at #");
  rejects({ type: 'array', items: { type: 'integer' }, uniqueItems: true }, 'unsupported_schema_keyword', 'uniqueItems');
  rejects(
    { type: 'object', properties: { a: { type: 'string', format: 'credit-card' } } },
    'unsupported_schema_keyword',
    'format: credit-card',
  );
  rejects({ not: { type: 'string' } }, 'unsupported_schema_keyword', "'not'");
  rejects({ type: 'object', if: { required: ['a'] }, then: { required: ['b'] } }, 'unsupported_schema_keyword', "'if'");
  rejects({ type: 'object', $defs: { x: { type: 'string', contains: {} } } }, 'unsupported_schema_keyword', '#/$defs/x');
  rejects({ type: 'object', nullable: true }, 'unsupported_schema_keyword', "'nullable'");
  rejects({ allOf: [{ type: 'object' }, { required: ['a'] }] }, 'unsupported_schema_keyword', 'allOf');
  rejects({ $ref: 'https://example.com/schema.json' }, 'unsupported_schema_keyword', '$ref');
});

test('invalid schemas and oversized schemas are 400s', () => {
  rejects({ type: 'object', properties: { a: { $ref: '#/$defs/missing' } } }, 'invalid_schema', 'not valid');
  rejects({ type: 'objectish' }, 'invalid_schema', 'not valid');
  rejects({ type: 'object', properties: [] }, 'invalid_schema', 'properties');
  const big = {
    type: 'object',
    properties: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`field_${i}`, { type: 'string', description: 'x'.repeat(10) }])),
  };
  assert.ok(JSON.stringify(big).length > MAX_SCHEMA_BYTES);
  rejects(big, 'schema_too_large', 'compile-time bound');
  let deep: Record<string, unknown> = { type: 'integer' };
  for (let i = 0; i <= MAX_SCHEMA_DEPTH; i++) deep = { type: 'array', items: deep };
  rejects(deep, 'schema_too_large', 'deeper');
});

test('supported schemas pass; annotations are allowed; the cache key ignores key order and name', () => {
  const s = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Person',
    type: 'object',
    description: 'd',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 20 },
      code: { type: 'string', pattern: '^[A-Z]' },
      when: { type: 'string', format: 'date-time' },
      age: { type: 'integer', minimum: 0 },
      nick: { type: ['string', 'null'] },
      kind: { enum: ['a', 'b'] },
      tags: { type: 'array', items: { $ref: '#/$defs/tag' }, maxItems: 3 },
    },
    required: ['name'],
    additionalProperties: false,
    $defs: { tag: { anyOf: [{ const: 'x' }, { type: 'integer', minimum: -3, exclusiveMaximum: 5 }] } },
  };
  checkConstraint({ type: 'json_schema', schema: s, strict: true });
  checkConstraint({ type: 'json_object' });
  const reordered = Object.fromEntries(Object.entries(s).reverse());
  assert.equal(
    constraintKey({ type: 'json_schema', schema: s }),
    constraintKey({ type: 'json_schema', schema: reordered, name: 'other', strict: false }),
  );
  assert.notEqual(constraintKey({ type: 'json_schema', schema: s }), constraintKey({ type: 'json_object' }));
});

test('structural tags: the JSON schemas inside are checked too', () => {
  const tag = (schema: Record<string, unknown>) => ({
    type: 'structural_tag' as const,
    format: {
      type: 'triggered_tags' as const,
      triggers: ['<tool_call>'],
      tags: [
        {
          type: 'tag' as const,
          begin: '<tool_call>{"name": "f", "arguments": ',
          content: { type: 'json_schema' as const, json_schema: schema },
          end: '}</tool_call>',
        },
      ],
    },
  });
  checkConstraint(tag({ type: 'object', properties: { a: { type: 'integer' } } }));
  assert.throws(
    () => checkConstraint(tag({ type: 'object', properties: { a: { oneOf: [{}] } } })),
    (e: unknown) => e instanceof TokenmillError && e.code === 'unsupported_schema_keyword' && e.param === 'tools',
  );
  assert.throws(
    () => checkConstraint({ type: 'structural_tag', format: { type: 'triggered_tags', triggers: [], tags: [] } }),
    (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_schema',
  );
});

test('checkOutput: ajv validation of finished outputs', () => {
  const c = {
    type: 'json_schema' as const,
    schema: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false },
  };
  assert.deepEqual(checkOutput(c, '{"a": 3}'), { ok: true, value: { a: 3 } });
  const bad = checkOutput(c, '{"a": "x"}');
  assert.equal(bad.ok, false);
  assert.equal(checkOutput(c, '{"a": 3').ok, false);
  assert.equal(checkOutput({ type: 'json_object' }, '[1]').ok, false);
  assert.equal(checkOutput({ type: 'json_object' }, '{"x": [1]}').ok, true);
});

test('numeric bounds: exact integer ranges become enums; what xgrammar would get wrong is refused', () => {
  rejects({ type: 'number', minimum: 0, maximum: 1 }, 'unsupported_schema_keyword', "'minimum' at #");
  rejects({ type: 'integer', minimum: 7 }, 'unsupported_schema_keyword', 'one-sided');
  rejects({ type: 'integer', maximum: 120 }, 'unsupported_schema_keyword', 'one-sided');
  rejects({ type: 'integer', minimum: 0, maximum: 5000 }, 'unsupported_schema_keyword', 'spans 5001');
  rejects({ type: ['integer', 'null'], minimum: 0 }, 'unsupported_schema_keyword', 'minimum');
  rejects({ type: 'integer', minimum: 5, maximum: 1 }, 'invalid_schema', 'empty');
  const s = {
    type: 'object',
    properties: {
      age: { type: 'integer', minimum: 0, maximum: 3 },
      n: { type: 'integer', exclusiveMinimum: 0 },
      k: { type: 'integer', minimum: -1.5, exclusiveMaximum: 1 },
    },
  };
  checkConstraint({ type: 'json_schema', schema: s });
  assert.deepEqual(grammarSchema(s), {
    type: 'object',
    properties: { age: { type: 'integer', enum: [0, 1, 2, 3] }, n: { type: 'integer', minimum: 1 }, k: { type: 'integer', enum: [-1, 0] } },
  });
});

test(
  'patterns that could put a quote, a backslash or a control ' + 'character into the string are refused; lengths become safe patterns',
  () => {
    rejects({ type: 'string', pattern: '^.*$' }, 'unsupported_schema_keyword', "'pattern'");
    rejects({ type: 'string', pattern: '[^a]+' }, 'unsupported_schema_keyword', 'negated');
    rejects({ type: 'string', pattern: '^[ -~]+$' }, 'unsupported_schema_keyword', 'range');
    rejects({ type: 'string', pattern: '^a+$', maxLength: 3 }, 'unsupported_schema_keyword', 'minLength/maxLength');
    checkConstraint({ type: 'json_schema', schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]*(-\\d+)?$' } });
    assert.deepEqual(grammarSchema({ type: 'string', minLength: 1, maxLength: 3 }), {
      type: 'string',
      pattern: '^[^"\\\\\\u0000-\\u001f]{1,3}$',
    });
    assert.deepEqual(grammarSchema({ type: 'string', format: 'uuid' }), {
      type: 'string',
      pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    });
  },
);
