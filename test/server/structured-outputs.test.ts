// Structured outputs through a live server on the real Engine (a random-weight model with the real
// Qwen3 vocabulary and chat template) and the official openai client: chat.completions.parse with
// a zod schema (zodResponseFormat), the same through .stream() / finalChatCompletion(), streamed and
// non-streamed text equal for a seed, json_object on chat and completions, responses.parse with
// zodTextFormat (text.format takes the chat path), finish_reason "length"
// for a cut document, and the 400s (unsupported keyword, invalid and oversized schemas, bad shapes)
// with the OpenAI envelope while the server keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { LengthFinishReasonError } from 'openai/error';
import { zodResponseFormat, zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';
import { makeTinyModel, type TinyModel } from '../../src/model/random-model.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { sharedPath, skipUnlessShared } from '../tokenizer/shared-models.js';
import { dirname } from 'node:path';

const skip = skipUnlessShared('qwen3-tokenizer/tokenizer.json');

const Person = z.object({
  name: z.string().max(3),
  age: z.number().int().min(0).max(120),
  color: z.enum(['red', 'green', 'blue']),
  tags: z.array(z.boolean()).max(2),
});

async function expect400(p: Promise<unknown>, code: string, param: string, includes?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError, `expected a 400, got ${String(e)}`);
    const err = e.error as { param?: string | null; code?: string | null; message?: string; type?: string };
    assert.equal(err.code, code, err.message);
    assert.equal(err.param, param, err.message);
    assert.equal(err.type, 'invalid_request_error');
    if (includes !== undefined) assert.ok(err.message?.includes(includes), err.message);
    return true;
  });
}

describe('structured outputs (openai client, live server, real engine, Qwen3 vocabulary)', { skip }, () => {
  let tiny: TinyModel;
  let stack: ModelStack;
  let server: TokenmillServer;
  let client: OpenAI;
  let url: string;
  /** -100 on pure-whitespace tokens: keeps random-weight documents short (see the engine test). */
  const logitBias: Record<string, number> = {};

  before(async () => {
    tiny = makeTinyModel(dirname(sharedPath('qwen3-tokenizer/tokenizer.json')), {
      preset: 'tiny-qwen3',
      patch: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16 },
    });
    const tok = loadTokenizer(tiny.dir);
    for (let id = 0; id < tok.vocabSize; id++) {
      const b = tok.tokenBytes(id);
      if (b.length > 0 && b.every((x) => x === 0x20 || x === 0x0a || x === 0x09 || x === 0x0d)) logitBias[String(id)] = -100;
    }
    const metrics = new ServerMetrics({ modelName: 'tiny-qwen3', usdPerHour: 1 });
    stack = await openModelStack({
      dir: tiny.dir,
      modelId: 'tiny-qwen3',
      kvCacheBytes: 8 * 1024 * 1024,
      usdPerHour: 1,
      observer: metrics,
      numThreads: 2,
    });
    server = await createServer({ engine: stack.engine, frontend: stack.frontend, metrics });
    url = (await server.listen({ port: 0 })).url;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0, timeout: 60_000 });
  });
  after(async () => {
    await server?.close();
    await stack?.frontend.close();
    tiny?.remove();
  });

  const messages = [{ role: 'user' as const, content: 'Describe a person as JSON.' }];

  it('chat.completions.parse with zodResponseFormat: every finished answer parses; a cut one is LengthFinishReasonError', async () => {
    let parsed = 0;
    let cut = 0;
    await Promise.all(
      Array.from({ length: 12 }, async (_, seed) => {
        try {
          const r = await client.chat.completions.parse({
            model: 'tiny-qwen3',
            messages,
            response_format: zodResponseFormat(Person, 'person'),
            max_completion_tokens: 40,
            seed,
            logit_bias: logitBias,
          });
          const c = r.choices[0]!;
          assert.equal(c.finish_reason, 'stop');
          assert.deepEqual(c.message.parsed, Person.parse(JSON.parse(c.message.content!)));
          parsed++;
        } catch (e) {
          if (!(e instanceof LengthFinishReasonError)) throw e;
          cut++;
        }
      }),
    );
    assert.ok(parsed >= 6, `parsed ${parsed}, cut ${cut}`);
  });

  it('.stream() + finalChatCompletion(): the same document as the non-streamed call for a seed', async () => {
    for (const seed of [3, 4]) {
      const rf = zodResponseFormat(Person, 'person');
      const plain = await client.chat.completions.create({
        model: 'tiny-qwen3',
        messages,
        response_format: rf,
        max_completion_tokens: 40,
        seed,
        logit_bias: logitBias,
      });
      const stream = client.chat.completions.stream({
        model: 'tiny-qwen3',
        messages,
        response_format: rf,
        max_completion_tokens: 40,
        seed,
        logit_bias: logitBias,
      });
      let deltas = '';
      for await (const chunk of stream) deltas += chunk.choices[0]?.delta?.content ?? '';
      const fin = await stream
        .finalChatCompletion()
        .catch((e: unknown) => (e instanceof LengthFinishReasonError ? null : Promise.reject(e)));
      assert.equal(deltas, plain.choices[0]!.message.content);
      if (plain.choices[0]!.finish_reason === 'stop') {
        assert.ok(fin !== null);
        assert.deepEqual(fin.choices[0]!.message.parsed, Person.parse(JSON.parse(deltas)));
      }
    }
  });

  it('json_object on chat and completions; n > 1 gives independent valid choices', async () => {
    const chat = await client.chat.completions.create({
      model: 'tiny-qwen3',
      messages,
      response_format: { type: 'json_object' },
      max_completion_tokens: 24,
      n: 3,
      seed: 9,
      logit_bias: logitBias,
    });
    assert.equal(chat.choices.length, 3);
    for (const c of chat.choices) {
      if (c.finish_reason === 'stop') assert.equal(typeof JSON.parse(c.message.content!), 'object');
      else assert.ok(c.message.content!.startsWith('{'));
    }
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny-qwen3',
        prompt: 'JSON:',
        max_tokens: 40,
        seed: 1,
        logit_bias: logitBias,
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'x',
            schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false },
          },
        },
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { choices: { text: string; finish_reason: string }[] };
    assert.equal(body.choices[0]!.finish_reason, 'stop');
    assert.match(body.choices[0]!.text, /^\{\s*"ok"\s*:\s*(true|false)\s*\}$/);
  });

  it('responses.parse with zodTextFormat: text.format json_schema takes the same path', async () => {
    const Flag = z.object({ ok: z.boolean() });
    for (const seed of [1, 2]) {
      const r = await client.responses.parse({
        model: 'tiny-qwen3',
        input: 'Is it ok? Answer in JSON.',
        text: { format: zodTextFormat(Flag, 'flag') },
        max_output_tokens: 64,
        seed,
        store: false,
      });
      assert.equal(r.status, 'completed');
      assert.deepEqual(r.output_parsed, Flag.parse(JSON.parse(r.output_text)));
    }
  });

  it('max_tokens that cuts the document: finish_reason "length" and the valid prefix', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny-qwen3',
      messages,
      response_format: zodResponseFormat(Person, 'person'),
      max_completion_tokens: 3,
      seed: 1,
    });
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.ok(r.choices[0]!.message.content!.startsWith('{'));
  });

  it('400s with the envelope: unsupported keyword, invalid schema, oversized schema, bad shapes; then still serving', async () => {
    const js = (schema: unknown) => ({
      type: 'json_schema' as const,
      json_schema: { name: 'x', schema: schema as Record<string, unknown> },
    });
    const create = (response_format: unknown, extra: Record<string, unknown> = {}) =>
      client.chat.completions.create({
        model: 'tiny-qwen3',
        messages,
        max_completion_tokens: 4,
        response_format: response_format as { type: 'json_object' },
        ...extra,
      });
    await expect400(
      create(js({ type: 'object', properties: { a: { oneOf: [{ type: 'string' }, { type: 'integer' }] } } })),
      'unsupported_schema_keyword',
      'response_format',
      "'oneOf' at #/properties/a",
    );
    await expect400(create(js({ type: 'number', minimum: 0.5 })), 'unsupported_schema_keyword', 'response_format', 'minimum');
    await expect400(create(js({ type: 'object', properties: { a: { $ref: '#/$defs/nope' } } })), 'invalid_schema', 'response_format');
    const big = {
      type: 'object',
      properties: Object.fromEntries(
        Array.from({ length: 1500 }, (_, i) => [`f${i}`, { type: 'string', description: 'a field with a long description' }]),
      ),
    };
    await expect400(create(js(big)), 'schema_too_large', 'response_format');
    await expect400(create({ type: 'json_schema', json_schema: { name: 'x' } }), 'invalid_schema', 'response_format.json_schema.schema');
    await expect400(
      create({ type: 'json_schema', json_schema: { name: 'bad name!', schema: {} } }),
      'invalid_request',
      'response_format.json_schema.name',
    );
    await expect400(create({ type: 'xml' }), 'invalid_request', 'response_format.type');
    await expect400(create({ type: 'json_object' }, { stop: ['}'] }), 'invalid_request', 'stop');
    const ok = await client.chat.completions.create({ model: 'tiny-qwen3', messages, max_completion_tokens: 4, seed: 1 });
    assert.equal(ok.choices.length, 1);
  });
});
