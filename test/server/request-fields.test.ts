// Nothing accepted is ignored without a trace, on the real engine: include_stop_str_in_output keeps the
// stop string; extension fields that would change the answer if ignored get a 400 naming the field
// (their neutral form passes); fields without effect (store, metadata) and fields no schema knows are
// answered but named in x-tokenmill-ignored-fields. The StopChecker's own contract for the flag is checked directly too.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { StopChecker } from '../../src/engine/stop-checker.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';

const dir = mkdtempSync(join(tmpdir(), 'tm-fields-'));
let stack: ModelStack;
let server: TokenmillServer;
let client: OpenAI;
let url = '';

before(async () => {
  writeRandomModel(dir, { ...MODEL_PRESETS['tiny-llama']!.config, num_hidden_layers: 1 }, { seed: 12 });
  stack = await openModelStack({
    dir,
    modelId: 'tiny',
    device: cpuAddonAvailable().available ? 'cpu' : 'reference',
    kvCacheBytes: 2 << 20,
  });
  server = await createServer({ engine: stack.engine, frontend: stack.frontend });
  url = (await server.listen({ port: 0 })).url;
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-any', maxRetries: 0 });
});
after(async () => {
  await server?.close();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: the cases read response fields of every shape
type Json = Record<string, any>;

async function post(path: string, body: Record<string, unknown>): Promise<{ status: number; headers: Headers; json: Json }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Json };
}

test('StopChecker: includeStopStr keeps the matched string, across token boundaries', () => {
  const run = (include: boolean) => {
    const c = new StopChecker({
      stop: ['END'],
      stopTokenIds: [],
      eosTokenIds: [],
      ignoreEos: false,
      maxTokens: 10,
      includeStopStr: include,
    });
    return ['ab', 'cE', 'NDx'].map((t, i) => c.push(i, t).text).join('');
  };
  assert.equal(run(false), 'abc');
  assert.equal(run(true), 'abcEND');
});

test('include_stop_str_in_output on completions and chat (greedy on the real engine)', async () => {
  const base = { model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true };
  const full = (await client.completions.create(base)).choices[0]!.text;
  assert.ok(full.length >= 6, JSON.stringify(full));
  const stop = full.slice(3, 5);
  const at = full.indexOf(stop);
  const cut = await post('/v1/completions', { ...base, stop: [stop] });
  const kept = await post('/v1/completions', { ...base, stop: [stop], include_stop_str_in_output: true });
  assert.equal(cut.json.choices[0].text, full.slice(0, at));
  assert.equal(kept.json.choices[0].text, full.slice(0, at + stop.length));
  assert.equal(kept.json.choices[0].finish_reason, 'stop');
  const chatBase = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 12, temperature: 0, ignore_eos: true };
  const chatFull = (await post('/v1/chat/completions', chatBase)).json.choices[0].message.content as string;
  assert.ok(chatFull.length >= 4, JSON.stringify(chatFull));
  const s = chatFull.slice(1, 3);
  const kc = await post('/v1/chat/completions', { ...chatBase, stop: s, include_stop_str_in_output: true });
  assert.equal(kc.json.choices[0].message.content, chatFull.slice(0, chatFull.indexOf(s) + s.length));
});

test('fields that would change the answer are refused with a 400 naming them; neutral forms pass', async () => {
  const chat = { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 };
  const refused: [string, unknown][] = [
    ['min_tokens', 3],
    ['skip_special_tokens', false],
    ['spaces_between_special_tokens', false],
    ['use_beam_search', true],
    ['length_penalty', 0.5],
    ['truncate_prompt_tokens', 8],
    ['prompt_logprobs', 1],
    ['reasoning_effort', 'low'],
    ['modalities', ['text', 'audio']],
    ['audio', { voice: 'x' }],
    ['prediction', { type: 'content', content: 'x' }],
    ['web_search_options', {}],
    ['echo', true],
    ['continue_final_message', true],
    ['add_special_tokens', true],
  ];
  for (const [field, value] of refused) {
    const r = await post('/v1/chat/completions', { ...chat, [field]: value });
    assert.equal(r.status, 400, field);
    assert.equal(r.json.error.param, field);
    assert.match(r.json.error.message, new RegExp(`'${field}'`));
  }
  const neutral = {
    min_tokens: 0,
    skip_special_tokens: true,
    spaces_between_special_tokens: true,
    use_beam_search: false,
    length_penalty: 1,
    store: false,
    metadata: {},
    service_tier: 'auto',
    modalities: ['text'],
    echo: false,
    user: 'end-user-7',
  };
  const ok = await post('/v1/chat/completions', { ...chat, ...neutral });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.headers.get('x-tokenmill-ignored-fields'), null);
  const comp = await post('/v1/completions', { model: 'tiny', prompt: 'hi', max_tokens: 1, continue_final_message: false });
  assert.equal(comp.status, 400);
  assert.equal(comp.json.error.param, 'continue_final_message');
});

test('fields without effect and unknown fields are answered but named in x-tokenmill-ignored-fields', async () => {
  const r = await post('/v1/completions', { model: 'tiny', prompt: 'hi', max_tokens: 1, zz_new_field: 1, another_one: 'x' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-tokenmill-ignored-fields'), 'another_one,zz_new_field');
  const c = await post('/v1/chat/completions', {
    model: 'tiny',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 1,
    store: true,
    metadata: { a: 'b' },
    service_tier: 'flex',
  });
  assert.equal(c.status, 200);
  assert.equal(c.headers.get('x-tokenmill-ignored-fields'), 'store,metadata,service_tier');
});
