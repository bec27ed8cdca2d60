// The bounds that protect the server, each at its edge against the real server (real Engine, a tiny
// random Llama with its synthetic tokenizer and ChatML template): the limit itself is accepted, the
// limit + 1 is refused with its typed error (the OpenAI envelope, the status, the param). The table
// is the one docs/cli.md ("Limits") lists; a row changed here must change there.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { createServer, type TokenmillServer } from '../../src/server/app.js';
import { openModelStack, type ModelStack } from '../../src/server/model-stack.js';
import { DEFAULT_LIMITS as L } from '../../src/server/schemas.js';

const MAX_MODEL_LEN = 8192; // room for 512 ChatML messages
const BODY_LIMIT = 2 * 1024 * 1024; // the server's default
const dir = mkdtempSync(join(tmpdir(), 'tm-limits-'));
let stack: ModelStack;
let server: TokenmillServer;
let url = '';

before(async () => {
  writeRandomModel(
    dir,
    { ...MODEL_PRESETS['tiny-llama']!.config, num_hidden_layers: 1, max_position_embeddings: MAX_MODEL_LEN },
    { seed: 11 },
  );
  stack = await openModelStack({
    dir,
    modelId: 'tiny',
    device: cpuAddonAvailable().available ? 'cpu' : 'reference',
    kvCacheBytes: 16 << 20,
    numThreads: 1,
  });
  server = await createServer({ engine: stack.engine, frontend: stack.frontend, toolCallParser: 'hermes' });
  url = (await server.listen({ port: 0 })).url;
});
after(async () => {
  await server?.close();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; param: string | null; message: string }; choices?: unknown[]; data?: unknown[] };
}

async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

const user = (content = 'hi') => ({ role: 'user', content });
const chat = (extra: Record<string, unknown>) => ({ model: 'tiny', messages: [user()], max_tokens: 1, ...extra });
const comp = (extra: Record<string, unknown>) => ({ model: 'tiny', prompt: 'hi', max_tokens: 1, ...extra });
const strs = (n: number, len = 1) => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26)).repeat(len));
const tool = (i: number) => ({ type: 'function', function: { name: `f${i}`, parameters: { type: 'object', properties: {} } } });
const call = (i: number) => ({ id: `call_${i}`, type: 'function', function: { name: 'f0', arguments: '{}' } });
const schema = (s: unknown) => ({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: s } } });
/** A schema of exactly `n` JSON characters (an annotation pads it; annotations are ignored). */
function schemaOfLength(n: number): unknown {
  const base = JSON.stringify({ type: 'object', description: '' }).length;
  return { type: 'object', description: 'd'.repeat(n - base) };
}
function nested(depth: number): unknown {
  let s: unknown = { type: 'integer' };
  for (let i = 0; i < depth; i++) s = { type: 'object', properties: { a: s }, required: ['a'] };
  return s;
}
/** A completions body of exactly `n` bytes (the `user` field pads it). */
function bodyOfBytes(n: number): string {
  const base = JSON.stringify(comp({ user: '' })).length;
  return JSON.stringify(comp({ user: 'u'.repeat(n - base) }));
}

interface Row {
  readonly limit: string;
  readonly path: string;
  readonly ok: unknown;
  readonly over: unknown;
  readonly status: number;
  readonly code: string;
  readonly param?: string | null;
}

const ROWS: Row[] = [
  {
    limit: `body ${BODY_LIMIT} bytes`,
    path: '/v1/completions',
    ok: bodyOfBytes(BODY_LIMIT),
    over: bodyOfBytes(BODY_LIMIT + 1),
    status: 413,
    code: 'request_too_large',
  },
  {
    limit: `${L.maxMessages} messages`,
    path: '/v1/chat/completions',
    ok: chat({ messages: strs(L.maxMessages).map((c) => user(c)) }),
    over: chat({ messages: strs(L.maxMessages + 1).map((c) => user(c)) }),
    status: 400,
    code: 'invalid_request',
    param: 'messages',
  },
  {
    limit: `${L.maxStop} stop strings`,
    path: '/v1/completions',
    ok: comp({ stop: strs(L.maxStop) }),
    over: comp({ stop: strs(L.maxStop + 1) }),
    status: 400,
    code: 'invalid_request',
    param: 'stop',
  },
  {
    limit: `stop string of ${L.maxStopLength} characters`,
    path: '/v1/completions',
    ok: comp({ stop: ['z'.repeat(L.maxStopLength)] }),
    over: comp({ stop: ['z'.repeat(L.maxStopLength + 1)] }),
    status: 400,
    code: 'invalid_request',
    param: 'stop.0',
  },
  {
    limit: `n ${L.maxN}`,
    path: '/v1/completions',
    ok: comp({ n: L.maxN }),
    over: comp({ n: L.maxN + 1 }),
    status: 400,
    code: 'invalid_request',
    param: 'n',
  },
  {
    limit: `${L.maxChoices} choices (prompts x n)`,
    path: '/v1/completions',
    ok: comp({ prompt: strs(4), n: L.maxChoices / 4 }),
    over: comp({ prompt: strs(5), n: 13 }),
    status: 400,
    code: 'invalid_request',
    param: 'n',
  },
  {
    limit: `${L.maxPromptArray} prompts`,
    path: '/v1/completions',
    ok: comp({ prompt: strs(L.maxPromptArray) }),
    over: comp({ prompt: strs(L.maxPromptArray + 1) }),
    status: 400,
    code: 'invalid_request',
    param: 'prompt',
  },
  {
    limit: `logprobs ${L.maxLogprobs}`,
    path: '/v1/completions',
    ok: comp({ logprobs: L.maxLogprobs }),
    over: comp({ logprobs: L.maxLogprobs + 1 }),
    status: 400,
    code: 'invalid_request',
    param: 'logprobs',
  },
  {
    limit: `top_logprobs ${L.maxLogprobs}`,
    path: '/v1/chat/completions',
    ok: chat({ logprobs: true, top_logprobs: L.maxLogprobs }),
    over: chat({ logprobs: true, top_logprobs: L.maxLogprobs + 1 }),
    status: 400,
    code: 'invalid_request',
    param: 'top_logprobs',
  },
  {
    limit: `${L.maxTools} tools`,
    path: '/v1/chat/completions',
    ok: chat({ tools: Array.from({ length: L.maxTools }, (_, i) => tool(i)), tool_choice: 'none' }),
    over: chat({ tools: Array.from({ length: L.maxTools + 1 }, (_, i) => tool(i)), tool_choice: 'none' }),
    status: 400,
    code: 'invalid_request',
    param: 'tools',
  },
  {
    limit: `${L.maxToolCalls} tool calls in a message`,
    path: '/v1/chat/completions',
    ok: chat({
      messages: [
        user(),
        { role: 'assistant', content: null, tool_calls: Array.from({ length: L.maxToolCalls }, (_, i) => call(i)) },
        user(),
      ],
    }),
    over: chat({
      messages: [
        user(),
        { role: 'assistant', content: null, tool_calls: Array.from({ length: L.maxToolCalls + 1 }, (_, i) => call(i)) },
        user(),
      ],
    }),
    status: 400,
    code: 'invalid_request',
    param: 'messages.1.tool_calls',
  },
  {
    limit: `${L.maxEmbeddingInputs} embedding inputs`,
    path: '/v1/embeddings',
    ok: { model: 'tiny', input: strs(L.maxEmbeddingInputs) },
    over: { model: 'tiny', input: strs(L.maxEmbeddingInputs + 1) },
    status: 400,
    code: 'invalid_request',
    param: 'input',
  },
  {
    limit: `prompt + max_tokens = ${MAX_MODEL_LEN} (the context)`,
    path: '/v1/completions',
    ok: comp({ prompt: new Array(MAX_MODEL_LEN - 1).fill(5) }),
    over: comp({ prompt: new Array(MAX_MODEL_LEN).fill(5) }),
    status: 400,
    code: 'context_length_exceeded',
  },
  {
    limit: 'JSON schema of 32768 characters',
    path: '/v1/chat/completions',
    ok: chat(schema(schemaOfLength(32 * 1024))),
    over: chat(schema(schemaOfLength(32 * 1024 + 1))),
    status: 400,
    code: 'schema_too_large',
    param: 'response_format',
  },
  {
    limit: 'JSON schema nested 24 levels',
    path: '/v1/chat/completions',
    ok: chat(schema(nested(24))),
    over: chat(schema(nested(25))),
    status: 400,
    code: 'schema_too_large',
    param: 'response_format',
  },
  {
    limit: 'model name of 256 characters',
    path: '/v1/completions',
    ok: comp({ model: 'm'.repeat(256) }),
    over: comp({ model: 'm'.repeat(257) }),
    status: 400,
    code: 'invalid_request',
    param: 'model',
  },
];

for (const row of ROWS) {
  test(`limit: ${row.limit}`, async () => {
    const ok = await post(url, row.path, row.ok);
    // The unknown-model row: the name passes the bound and is then unknown (404), never refused for its length.
    if (row.limit.startsWith('model name')) assert.equal(ok.body.error?.code, 'model_not_found');
    else assert.equal(ok.status, 200, `at the limit: ${JSON.stringify(ok.body).slice(0, 300)}`);
    const over = await post(url, row.path, row.over);
    assert.equal(over.status, row.status, JSON.stringify(over.body).slice(0, 300));
    assert.equal(over.body.error?.code, row.code, over.body.error?.message);
    if (row.param !== undefined) assert.equal(over.body.error?.param, row.param, over.body.error?.message);
  });
}

test('limit: a text longer than the context x the most characters one token covers is refused before tokenizing', async () => {
  const per = stack.frontend.tokenizer.maxUnitsPerToken();
  assert.ok(per !== null);
  const atBound = 'ab'.repeat((MAX_MODEL_LEN * per) / 2);
  // At the bound the text is tokenized: the context check then counts its tokens.
  const ok = await post(url, '/v1/completions', comp({ prompt: atBound }));
  assert.equal(ok.body.error?.code, 'context_length_exceeded');
  assert.match(ok.body.error!.message, /However, you requested \d+ tokens/);
  const over = await post(url, '/v1/completions', comp({ prompt: `${atBound}a` }));
  assert.equal(over.status, 400);
  assert.equal(over.body.error?.code, 'context_length_exceeded');
  assert.match(
    over.body.error!.message,
    new RegExp(`the text is ${atBound.length + 1} characters, so at least ${MAX_MODEL_LEN + 1} tokens`),
  );
});

test('limit: --rate-limit burst 3 per key: 3 accepted, the 4th is 429 + Retry-After', async () => {
  const limited = await createServer({ engine: stack.engine, frontend: stack.frontend, rateLimit: { ratePerSecond: 0.001, burst: 3 } });
  const base = (await limited.listen({ port: 0 })).url;
  try {
    for (let i = 0; i < 3; i++) assert.equal((await post(base, '/v1/completions', comp({}))).status, 200);
    const over = await post(base, '/v1/completions', comp({}));
    assert.equal(over.status, 429);
    assert.equal(over.body.error?.code, 'rate_limit_exceeded');
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
  } finally {
    await limited.app.close(); // the engine is the shared stack's
  }
});

test('limit: --max-queue 2: one running and 2 waiting are admitted, the next is 503 + Retry-After', async () => {
  const q = await openModelStack({
    dir,
    modelId: 'tiny',
    device: cpuAddonAvailable().available ? 'cpu' : 'reference',
    kvCacheBytes: 8 << 20,
    numThreads: 1,
    maxNumSeqs: 1,
    maxWaitingRequests: 2,
  });
  const qs = await createServer({ engine: q.engine, frontend: q.frontend });
  const base = (await qs.listen({ port: 0 })).url;
  try {
    const long = comp({ prompt: [1], max_tokens: MAX_MODEL_LEN - 1, ignore_eos: true });
    const running = post(base, '/v1/completions', long);
    for (let i = 0; i < 500 && q.engine.stats().numRunning < 1; i++) await new Promise((r) => setTimeout(r, 10));
    const waiting = [post(base, '/v1/completions', comp({})), post(base, '/v1/completions', comp({}))];
    for (let i = 0; i < 500 && q.engine.stats().numWaiting < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(q.engine.stats().numWaiting, 2);
    const over = await post(base, '/v1/completions', comp({}));
    assert.equal(over.status, 503);
    assert.equal(over.body.error?.code, 'server_overloaded');
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    for (const a of await Promise.all([running, ...waiting])) assert.equal(a.status, 200);
  } finally {
    await qs.close();
    await q.frontend.close();
  }
});
