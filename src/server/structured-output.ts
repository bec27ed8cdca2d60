// Structured outputs on the OpenAI routes: response_format -> the engine's Constraint (enforced
// token by token), and the check of every finished output before it is returned. A choice cut by
// max_tokens (finish_reason "length") is returned as generated: it is a valid prefix but not a
// complete document, as OpenAI does (its SDK's parse() then raises LengthFinishReasonError). A
// choice that finished ("stop") and does not validate is never returned: structured_output_invalid.
import type { Constraint } from '../engine/constraint.js';
import { checkOutput } from '../engine/grammar/constraint-check.js';
import { TokenmillError } from '../util/errors.js';

/** OpenAI's rule for json_schema.name. */
const NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;

function bad(param: string, msg: string): TokenmillError {
  return new TokenmillError('invalid_request', msg, { param });
}

/** The constraint a response_format asks for (null: free text). Shape errors are 400s naming the field. */
export function constraintOfResponseFormat(rf: unknown): Constraint | null {
  if (rf === undefined || rf === null) return null;
  if (typeof rf !== 'object' || Array.isArray(rf)) throw bad('response_format', 'response_format must be an object.');
  const o = rf as Record<string, unknown>;
  switch (o.type) {
    case 'text':
      return null;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema': {
      const js = o.json_schema;
      if (js === null || typeof js !== 'object' || Array.isArray(js))
        throw bad(
          'response_format.json_schema',
          "response_format {type: 'json_schema'} needs a json_schema object: {name, schema, strict}.",
        );
      const j = js as Record<string, unknown>;
      if (typeof j.name !== 'string' || !NAME_RE.test(j.name))
        throw bad('response_format.json_schema.name', 'json_schema.name must be 1-64 characters of a-z, A-Z, 0-9, _ or -.');
      if (j.strict !== undefined && j.strict !== null && typeof j.strict !== 'boolean')
        throw bad('response_format.json_schema.strict', 'json_schema.strict must be a boolean.');
      const schema = j.schema;
      if (schema === undefined || schema === null)
        throw new TokenmillError('invalid_schema', 'json_schema.schema is required: tokenmill enforces the schema, so it needs one.', {
          param: 'response_format.json_schema.schema',
        });
      if (typeof schema !== 'boolean' && (typeof schema !== 'object' || Array.isArray(schema))) {
        throw new TokenmillError('invalid_schema', 'json_schema.schema must be a JSON Schema object.', {
          param: 'response_format.json_schema.schema',
        });
      }
      return { type: 'json_schema', name: j.name, schema: schema as Record<string, unknown>, strict: j.strict === true };
    }
    default:
      throw bad('response_format.type', `response_format.type must be 'text', 'json_object' or 'json_schema', got '${String(o.type)}'.`);
  }
}

/**
 * Check one finished choice of a constrained request: throws structured_output_invalid when it
 * ended with "stop" and does not validate (a bug: the grammar should have made that impossible).
 * A "length" choice is returned as generated (finish_reason "length" says it is cut).
 */
export function checkFinishedChoice(constraint: Constraint | null, text: string, finishReason: string | null): void {
  if (constraint === null || finishReason !== 'stop') return;
  const r = checkOutput(constraint, text);
  if (!r.ok) {
    throw new TokenmillError(
      'structured_output_invalid',
      `The finished output failed validation against the requested ${constraint.type}: ${r.reason}. This is a bug; please report it.`,
      { param: 'response_format' },
    );
  }
}
