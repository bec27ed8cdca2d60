// Auth (keys from env/file, constant-time compare, public probes), CORS allowlist, body limit
// (413), content type (415), bad JSON, request limits, x-request-id, and the /metrics exposure.

import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { ApiKeyStore, loadApiKeys, readApiKeyFile } from '../../src/server/auth.js';
import { TokenmillError } from '../../src/util/errors.js';
import { startRealLive, type RealLive } from './helpers.js';

const KEY = 'sk-tokenmill-secret-1234';

describe('auth on', () => {
  let live: RealLive;
  before(async () => {
    live = await startRealLive({ apiKey: KEY, server: { apiKeys: new ApiKeyStore([KEY, 'another-key-5678']) } });
  });
  after(() => live.close());

  it('accepts the right key and rejects a wrong or missing one with 401 envelopes', async () => {
    const ok = await live.client.chat.completions.create({
      model: 'tiny-model',
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 2,
    });
    assert.equal(ok.choices.length, 1);
    const bad = new OpenAI({ baseURL: `${live.url}/v1`, apiKey: 'sk-wrong-key-0000', maxRetries: 0 });
    await assert.rejects(
      bad.models.list(),
      (e: unknown) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key',
    );
    const res = await fetch(`${live.url}/v1/models`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { type: string; code: string; param: unknown } };
    assert.equal(body.error.type, 'authentication_error');
    assert.equal(body.error.code, 'invalid_api_key');
    assert.equal(body.error.param, null);
  });

  it(
    'leaves only /health, /ready and the dashboard files public; /metrics ' +
      '(and its JSON), /version, tokenize and unknown routes need the key',
    async () => {
      for (const p of ['/health', '/ready']) assert.equal((await fetch(live.url + p)).status, 200, p);
      for (const p of ['/', '/web/app.js']) assert.notEqual((await fetch(live.url + p)).status, 401, p); // no data in them
      for (const p of ['/metrics', '/metrics/series', '/metrics/info', '/version', '/v1/models/tiny-model', '/nope'])
        assert.equal((await fetch(live.url + p)).status, 401, p);
      assert.equal(
        (await fetch(`${live.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"a"}' }))
          .status,
        401,
      );
      const auth = { authorization: `Bearer ${KEY}` };
      const nf = await fetch(`${live.url}/nope`, { headers: auth });
      assert.equal(nf.status, 404);
      assert.equal(((await nf.json()) as { error: { code: string } }).error.code, 'not_found');
      assert.equal((await fetch(`${live.url}/version`, { headers: auth })).status, 200);
    },
  );

  it('charges cost to the key id (last 4 chars only) in /metrics', async () => {
    await live.client.completions.create({ model: 'tiny-model', prompt: 'x', max_tokens: 3 });
    const text = await (await fetch(`${live.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    assert.match(text, /tokenmill_cost_usd_total\{key="k1-1234",model="tiny-model"\} [0-9.e-]+/);
    assert.ok(!text.includes(KEY));
    for (const name of [
      'tokenmill_time_to_first_token_seconds_bucket',
      'tokenmill_inter_token_latency_seconds_bucket',
      'tokenmill_e2e_request_latency_seconds_count',
      'tokenmill_request_queue_time_seconds_count',
      'tokenmill_num_requests_running',
      'tokenmill_num_requests_waiting',
      'tokenmill_kv_cache_usage_perc',
      'tokenmill_prompt_tokens_total',
      'tokenmill_generation_tokens_total',
      'tokenmill_request_success_total',
      'tokenmill_usd_per_1k_output_tokens',
    ]) {
      assert.ok(text.includes(name), name);
    }
    assert.match(text, /tokenmill_request_success_total\{model_name="tiny-model",finished_reason="length"\} \d/);
  });
});

describe('auth off, metrics public, CORS allowlist, limits', () => {
  let live: RealLive;
  before(async () => {
    live = await startRealLive({
      server: {
        metricsPublic: true,
        corsOrigins: ['https://ok.example'],
        bodyLimitBytes: 4096,
        limits: { maxN: 2, maxStop: 2, maxMessages: 3, maxLogprobs: 5 },
        webDir: join(import.meta.dirname, '..', '..', 'web'),
      },
    });
  });
  after(() => live.close());

  it('accepts any key and serves /metrics without one', async () => {
    assert.equal((await fetch(`${live.url}/v1/models`)).status, 200);
    assert.equal((await fetch(`${live.url}/v1/models`, { headers: { authorization: 'Bearer whatever' } })).status, 200);
    const m = await fetch(`${live.url}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') ?? '', /text\/plain/);
  });

  it('serves the dashboard page with a restrictive CSP (no inline script), its scripts and uPlot from the package', async () => {
    const r = await fetch(`${live.url}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.ok(!/script-src[^;]*unsafe-inline/.test(csp), csp);
    const html = await r.text();
    assert.ok(!/<script>/.test(html), 'no inline script');
    assert.ok(!/https?:\/\//.test(html.replace(/<!--[\s\S]*?-->/g, '')), 'no external URL');
    for (const [path, type] of [
      ['/web/app.js', /javascript/],
      ['/web/charts.js', /javascript/],
      ['/web/playground.js', /javascript/],
      ['/web/dashboard.css', /css/],
      ['/web/vendor/uplot.js', /javascript/],
      ['/web/vendor/uplot.css', /css/],
    ] as const) {
      assert.ok(html.includes(path) || path.endsWith('charts.js') || path.endsWith('playground.js'), `${path} referenced`);
      const f = await fetch(live.url + path);
      assert.equal(f.status, 200, path);
      assert.match(f.headers.get('content-type') ?? '', type, path);
    }
    for (const bad of ['/web/..%2Fpackage.json', '/web/vendor/uPlot.d.ts', '/web/nope.js', '/web/index.html'])
      assert.equal((await fetch(live.url + bad)).status, 404, bad);
  });

  it('sends CORS headers only to allowlisted origins; answers preflights', async () => {
    const none = await fetch(`${live.url}/v1/models`, { headers: { origin: 'https://evil.example' } });
    assert.equal(none.headers.get('access-control-allow-origin'), null);
    const ok = await fetch(`${live.url}/v1/models`, { headers: { origin: 'https://ok.example' } });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://ok.example');
    assert.equal(ok.headers.get('access-control-allow-credentials'), null);
    const pre = await fetch(`${live.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://ok.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /authorization/);
  });

  it('413 for a body over the limit, 415 for a non-JSON content type, 400 for bad JSON', async () => {
    const post = (body: string, ct = 'application/json') =>
      fetch(`${live.url}/v1/completions`, { method: 'POST', headers: { 'content-type': ct }, body });
    const big = await post(JSON.stringify({ prompt: 'x'.repeat(10_000) }));
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'request_too_large');
    const txt = await post('{"prompt":"x"}', 'text/plain');
    assert.equal(txt.status, 415);
    assert.equal(((await txt.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
    const bad = await post('{"prompt":');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
    const arr = await post('[1,2]');
    assert.equal(arr.status, 400);
  });

  it('enforces n, stop, messages and logprobs limits with 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ messages: [{ role: 'user', content: 'x' }], n: 3 }, 'n'],
      [{ messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c'] }, 'stop'],
      [{ messages: Array.from({ length: 4 }, () => ({ role: 'user', content: 'x' })) }, 'messages'],
      [{ messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 6 }, 'top_logprobs'],
      [{ messages: [{ role: 'user', content: 'x' }], chat_template: '{{ evil }}' }, 'chat_template'],
    ];
    for (const [body, param] of cases) {
      const r = await fetch(`${live.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(r.status, 400, param);
      assert.equal(((await r.json()) as { error: { param: string } }).error.param, param);
    }
  });

  it('echoes a valid x-request-id and creates one otherwise', async () => {
    const a = await fetch(`${live.url}/v1/models`, { headers: { 'x-request-id': 'my-req.42' } });
    assert.equal(a.headers.get('x-request-id'), 'my-req.42');
    const b = await fetch(`${live.url}/v1/models`, { headers: { 'x-request-id': 'bad id with spaces' } });
    assert.match(b.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('tokenize / detokenize round-trip', async () => {
    const t = await fetch(`${live.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'hi', add_special_tokens: false }),
    });
    const tj = (await t.json()) as { tokens: number[]; count: number };
    assert.deepEqual(tj.tokens, [104, 105]);
    assert.equal(tj.count, 2);
    const d = await fetch(`${live.url}/detokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tokens: tj.tokens }),
    });
    assert.equal(((await d.json()) as { prompt: string }).prompt, 'hi');
    const c = await fetch(`${live.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(((await c.json()) as { count: number }).count, 20);
  });
});

describe('api key loading', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tm-keys-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a 0600 key file, skipping comments and blank lines', () => {
    const f = join(dir, 'keys');
    writeFileSync(f, '# team keys\nsk-file-key-aaaa\n\nsk-file-key-bbbb\n');
    chmodSync(f, 0o600);
    assert.deepEqual(readApiKeyFile(f), ['sk-file-key-aaaa', 'sk-file-key-bbbb']);
    const store = loadApiKeys({ keyList: 'sk-env-key-cccc, ', keyFile: f });
    assert.equal(store.size, 3);
    assert.equal(store.verify('sk-file-key-bbbb'), 'k3-bbbb');
    assert.equal(store.verify('sk-env-key-cccc'), 'k1-cccc');
    assert.equal(store.verify('sk-file-key-bbbX'), null);
    assert.equal(store.verify(null), null);
  });

  it('refuses a group- or world-readable key file', () => {
    const f = join(dir, 'open');
    writeFileSync(f, 'sk-file-key-aaaa\n');
    chmodSync(f, 0o644);
    assert.throws(
      () => readApiKeyFile(f),
      (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_argument' && /chmod 600/.test(e.message),
    );
  });

  it('no keys means auth off (any key accepted)', () => {
    const s = loadApiKeys({});
    assert.equal(s.enabled, false);
    assert.equal(s.verify(null), 'anonymous');
  });
});
