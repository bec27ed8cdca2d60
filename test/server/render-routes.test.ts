// The render routes on the real engine over the tiny model (real tokenizer): /v1/completions/render
// answers [{token_ids}] per prompt and /v1/chat/completions/render {token_ids}, the ids the generating
// route then runs on (its usage.prompt_tokens and /tokenize agree); the body is the client's request
// as a router forwards it (sampling fields and all); bad input gets the OpenAI envelope like the
// generating routes (unknown model 404, context overflow 400, missing key 401); nothing reaches the engine.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiKeyStore } from '../../src/server/auth.js';
import { disposeTinyModel } from '../engine/tiny-model.js';
import { startTinyServer, type TinyServer } from '../metrics/tiny-server.js';

after(disposeTinyModel);

const KEY = 'render-test-key-1234';
const auth = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };

// biome-ignore lint/suspicious/noExplicitAny: the cases read response fields of every shape
type Json = any;

async function post(
  url: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = auth,
): Promise<{ status: number; json: Json }> {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

describe('render routes', () => {
  let t: TinyServer;
  let url: string;
  before(async () => {
    t = await startTinyServer({ server: { apiKeys: new ApiKeyStore([KEY]), seriesIntervalMs: 3_600_000 } });
    url = (await t.server.listen({ port: 0 })).url;
  });
  after(() => t?.close());

  it('completions: one {token_ids} per prompt, the ids the completion runs on; sampling fields accepted', async () => {
    const one = await post(url, '/v1/completions/render', {
      model: 'tiny',
      prompt: 'hello there',
      max_tokens: 4,
      temperature: 0.7,
      stream: true,
    });
    assert.equal(one.status, 200, JSON.stringify(one.json));
    assert.ok(Array.isArray(one.json) && one.json.length === 1);
    const ids = one.json[0].token_ids as number[];
    assert.ok(ids.length > 0 && ids.every((x) => Number.isInteger(x)));
    assert.equal(one.json[0].model, 'tiny');
    const tok = await post(url, '/tokenize', { model: 'tiny', prompt: 'hello there' });
    assert.deepEqual(ids, tok.json.tokens);
    const gen = await post(url, '/v1/completions', { model: 'tiny', prompt: 'hello there', max_tokens: 1, temperature: 0 });
    assert.equal(gen.json.usage.prompt_tokens, ids.length);

    const many = await post(url, '/v1/completions/render', { model: 'tiny', prompt: ['a b', 'c d e'] });
    assert.deepEqual(
      many.json.map((r: { token_ids: number[] }) => r.token_ids),
      [(await post(url, '/tokenize', { prompt: 'a b' })).json.tokens, (await post(url, '/tokenize', { prompt: 'c d e' })).json.tokens],
    );
    const asIds = await post(url, '/v1/completions/render', { prompt: [7, 8, 9] });
    assert.deepEqual(asIds.json, [{ token_ids: [7, 8, 9], model: 'tiny' }]);
  });

  it('chat: {token_ids} of the rendered template, as /tokenize and the chat completion see them', async () => {
    const messages = [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
    ];
    const r = await post(url, '/v1/chat/completions/render', {
      model: 'tiny',
      messages,
      max_completion_tokens: 3,
      stream_options: { include_usage: true },
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(!Array.isArray(r.json));
    const tok = await post(url, '/tokenize', { model: 'tiny', messages });
    assert.deepEqual(r.json.token_ids, tok.json.tokens);
    const gen = await post(url, '/v1/chat/completions', { model: 'tiny', messages, max_tokens: 1, temperature: 0 });
    assert.equal(gen.json.usage.prompt_tokens, r.json.token_ids.length);
  });

  it('errors are the OpenAI envelope, as on the generating routes; nothing is scheduled', async () => {
    const before = t.engine.stats();
    const queried = (await t.metrics.render()).body.match(/^tokenmill_prefix_cache_queries_total\{[^}]*\} (\S+)$/m)?.[1];
    const cases: [string, unknown, number, string | null][] = [
      ['/v1/completions/render', { model: 'other', prompt: 'x' }, 404, 'model_not_found'],
      ['/v1/completions/render', { model: 'tiny' }, 400, null],
      ['/v1/completions/render', { prompt: 'x', max_tokens: 100_000 }, 400, 'context_length_exceeded'],
      ['/v1/completions/render', { prompt: [100_000] }, 400, null],
      ['/v1/chat/completions/render', { model: 'tiny', messages: 'hi' }, 400, null],
      ['/v1/chat/completions/render', { model: 'other', messages: [{ role: 'user', content: 'x' }] }, 404, 'model_not_found'],
    ];
    for (const [path, body, status, code] of cases) {
      const r = await post(url, path, body);
      assert.equal(r.status, status, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
      assert.equal(typeof r.json.error.message, 'string');
      assert.equal(typeof r.json.error.type, 'string');
      if (code !== null) assert.equal(r.json.error.code, code);
    }
    const noKey = await post(url, '/v1/completions/render', { prompt: 'x' }, { 'content-type': 'application/json' });
    assert.equal(noKey.status, 401);
    assert.equal(noKey.json.error.code, 'invalid_api_key');
    const queriedAfter = (await t.metrics.render()).body.match(/^tokenmill_prefix_cache_queries_total\{[^}]*\} (\S+)$/m)?.[1];
    assert.equal(queriedAfter, queried, 'renders never reach the engine');
    assert.equal(t.engine.stats().numWaiting, before.numWaiting);
  });
});
