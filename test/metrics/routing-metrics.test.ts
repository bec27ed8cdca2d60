// The routing contract's metrics on the real engine over the tiny model: the --metrics-port listener
// answers GET /metrics without an API key (the API port still wants one) and nothing else; the
// exposition parses strictly with and without --metrics-compat vllm; with it, the names the inference
// gateway's endpoint picker reads for engine type "vllm" (llm-d-router's defaultEngineConfigs:
// queue, running, KV usage, cache_config_info with block_size / num_gpu_blocks labels) are there with
// the model_name label and the same values as their tokenmill_* twins; without it, no vllm: name.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ApiKeyStore } from '../../src/server/auth.js';
import { disposeTinyModel } from '../engine/tiny-model.js';
import { parsePrometheusText, valueOf as sampleValue, type Family } from './prom-text.js';
import { startTinyServer, type TinyServer } from './tiny-server.js';

after(disposeTinyModel);

const KEY = 'routing-test-key-1234';
/** What the picker's default vLLM engine config reads (llm-d-router pkg/epp/.../extractor/metrics/factories.go). */
const PICKER_GAUGES = ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'vllm:kv_cache_usage_perc'];
const TWINS: [string, string][] = [
  ['vllm:num_requests_waiting', 'tokenmill_num_requests_waiting'],
  ['vllm:num_requests_running', 'tokenmill_num_requests_running'],
  ['vllm:kv_cache_usage_perc', 'tokenmill_kv_cache_usage_perc'],
  ['vllm:prompt_tokens_total', 'tokenmill_prompt_tokens_total'],
  ['vllm:generation_tokens_total', 'tokenmill_generation_tokens_total'],
  ['vllm:prefix_cache_hits_total', 'tokenmill_prefix_cache_hits_total'],
  ['vllm:prefix_cache_queries_total', 'tokenmill_prefix_cache_queries_total'],
  ['vllm:request_prefill_time_seconds_count', 'tokenmill_request_prefill_time_seconds_count'],
  ['vllm:request_time_per_output_token_seconds_count', 'tokenmill_request_time_per_output_token_seconds_count'],
];

async function complete(url: string, prompt: number[], maxTokens: number): Promise<void> {
  const r = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'tiny', prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true }),
  });
  assert.equal(r.status, 200, await r.text());
}

function cacheInfo(fams: Map<string, Family>, name: string): Record<string, string> {
  const f = fams.get(name);
  assert.ok(f, `${name} present`);
  assert.equal(f.type, 'gauge');
  assert.equal(f.samples.length, 1);
  assert.equal(f.samples[0]!.value, 1);
  return f.samples[0]!.labels;
}

describe('routing metrics', () => {
  let t: TinyServer | null = null;
  after(() => t?.close());

  it('--metrics-port serves /metrics without a key, only /metrics; compat names mirror tokenmill_* with model_name', async () => {
    t = await startTinyServer({ compat: 'vllm', server: { apiKeys: new ApiKeyStore([KEY]), metricsPort: 0, seriesIntervalMs: 3_600_000 } });
    const { url, metricsUrl } = await t.server.listen({ port: 0 });
    assert.ok(metricsUrl !== null);
    assert.ok(metricsUrl.endsWith('/metrics'));
    const prompt = Array.from({ length: 40 }, (_, i) => 5 + i);
    await complete(url, prompt, 6);
    await complete(url, prompt, 6); // a prefix-cache hit on the second
    // Idle now: every gauge reads the same engine snapshot.
    for (let i = 0; i < 200 && t.engine.stats().numRunning > 0; i++) await new Promise((r) => setTimeout(r, 10));

    const open = await fetch(metricsUrl);
    assert.equal(open.status, 200);
    assert.match(open.headers.get('content-type') ?? '', /^text\/plain/);
    const fams = parsePrometheusText(await open.text());
    for (const name of PICKER_GAUGES) {
      const f = fams.get(name);
      assert.ok(f, `${name} exported`);
      assert.equal(f.type, 'gauge');
      assert.deepEqual(
        f.samples.map((s) => s.labels.model_name),
        ['tiny'],
        `${name} has model_name`,
      );
    }
    for (const [vllm, own] of TWINS) {
      const v = sampleValue(fams, vllm, { model_name: 'tiny' });
      assert.ok(v !== undefined, `${vllm} present`);
      assert.equal(v, sampleValue(fams, own, { model_name: 'tiny' }), `${vllm} = ${own}`);
    }
    assert.ok(sampleValue(fams, 'vllm:prefix_cache_hits_total')! >= 32, 'the repeated prompt hit the prefix cache');
    assert.ok(sampleValue(fams, 'vllm:request_prefill_time_seconds_count')! === 2);
    assert.ok(sampleValue(fams, 'vllm:request_time_per_output_token_seconds_count')! === 2);
    const want = { model_name: 'tiny', block_size: '16', num_gpu_blocks: '256' };
    assert.deepEqual(cacheInfo(fams, 'vllm:cache_config_info'), want);
    assert.deepEqual(cacheInfo(fams, 'tokenmill_cache_config_info'), want);

    // The API port still guards /metrics; the metrics port serves nothing else.
    const guarded = await fetch(`${url}/metrics`);
    assert.equal(guarded.status, 401);
    const other = await fetch(metricsUrl.replace(/\/metrics$/, '/v1/models'));
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as { error: { type: string } }).error.type, 'not_found_error');
    const post = await fetch(metricsUrl, { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    assert.ok(((await post.json()) as { error: { message: string } }).error.message.length > 0);
    const head = await fetch(metricsUrl, { method: 'HEAD' });
    assert.equal(head.status, 200);

    // Draining: the API refuses new work, the picker still sees the replica (and /ready says 503).
    const draining = t.server.drain(5_000);
    assert.equal((await fetch(`${url}/ready`)).status, 503);
    assert.equal((await fetch(metricsUrl)).status, 200);
    await draining;
    await t.close();
    t = null;
    await assert.rejects(fetch(metricsUrl), 'the listener closes with the server');
  });

  it('without compat: the exposition parses, has the cache-config gauge and no vllm: name', async () => {
    t = await startTinyServer({ server: { metricsPort: 0, seriesIntervalMs: 3_600_000 } });
    const { url, metricsUrl } = await t.server.listen({ port: 0 });
    await complete(url, [5, 6, 7], 3);
    const fams = parsePrometheusText(await (await fetch(metricsUrl!)).text());
    assert.deepEqual(
      [...fams.keys()].filter((n) => n.startsWith('vllm:')),
      [],
    );
    assert.equal(cacheInfo(fams, 'tokenmill_cache_config_info').block_size, '16');
    for (const n of ['tokenmill_num_requests_waiting', 'tokenmill_num_requests_running', 'tokenmill_kv_cache_usage_perc'])
      assert.ok(fams.has(n), n);
    assert.equal(sampleValue(fams, 'tokenmill_request_prefill_time_seconds_count'), 1);
  });
});
