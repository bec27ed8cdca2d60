// /metrics and /metrics/series on the real engine over the tiny model: the exposition parses
// strictly; token counters move while a long stream is still running (per step, not per finished
// request); process metrics are there; the NVML GPU gauges are absent without libnvidia-ml and
// present, with the right units, over a stand-in library compiled here (the real native dlopen path).

import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GpuMonitor } from '../../src/metrics/gpu-monitor.js';
import { cpuAddonAvailable } from '../../src/runtime/select.js';
import { disposeTinyModel } from '../engine/tiny-model.js';
import { buildFakeNvml, type FakeNvml } from './fake-nvml.js';
import { parsePrometheusText, valueOf } from './prom-text.js';
import { startTinyServer, type TinyServer } from './tiny-server.js';

after(disposeTinyModel);

const GPU_FAMILIES = [
  'tokenmill_gpu_utilization_ratio',
  'tokenmill_gpu_memory_used_bytes',
  'tokenmill_gpu_memory_total_bytes',
  'tokenmill_gpu_power_watts',
  'tokenmill_gpu_temperature_celsius',
  'tokenmill_gpu_sm_clock_hertz',
];

async function scrape(url: string): Promise<ReturnType<typeof parsePrometheusText>> {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  return parsePrometheusText(await r.text());
}

describe('live metrics on the real engine', () => {
  let t: TinyServer;
  let url: string;
  before(async () => {
    t = await startTinyServer({
      server: { seriesIntervalMs: 3_600_000 },
      gpu: new GpuMonitor({ library: '/nonexistent/libnvidia-ml.so.1' }),
    });
    url = (await t.server.listen({ port: 0 })).url;
  });
  after(() => t?.close());

  it('token counters move during a long stream, before it finishes', async () => {
    const ac = new AbortController();
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      signal: ac.signal,
      body: JSON.stringify({ model: 'tiny', prompt: [5, 6, 7, 8], max_tokens: 240, temperature: 0, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let numChunks = 0;
    let buf = '';
    const readChunks = async (k: number): Promise<void> => {
      while (numChunks < k) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'stream ended early');
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          if (buf.startsWith('data: {')) numChunks++;
          buf = buf.slice(i + 2);
        }
      }
    };
    await readChunks(10);
    const first = await scrape(url);
    await readChunks(40);
    const second = await scrape(url);
    ac.abort();
    for (const m of [first, second]) {
      // Still running at both scrapes: nothing finished yet, so only per-step counting explains the totals.
      assert.equal(valueOf(m, 'tokenmill_e2e_request_latency_seconds_count') ?? 0, 0);
      assert.equal(valueOf(m, 'tokenmill_num_requests_running'), 1);
    }
    const g1 = valueOf(first, 'tokenmill_generation_tokens_total')!;
    const g2 = valueOf(second, 'tokenmill_generation_tokens_total')!;
    assert.ok(g1 >= 10, `generation tokens ${g1} after 10 streamed chunks`);
    assert.ok(g2 >= 40 && g2 > g1, `generation tokens ${g1} -> ${g2}`);
    assert.equal(valueOf(first, 'tokenmill_prompt_tokens_total'), 4);
    assert.ok(
      valueOf(second, 'tokenmill_machine_cost_usd', { basis: 'busy' })! > valueOf(first, 'tokenmill_machine_cost_usd', { basis: 'busy' })!,
    );
    assert.ok(
      valueOf(second, 'tokenmill_inter_token_latency_seconds_count')! > valueOf(first, 'tokenmill_inter_token_latency_seconds_count')!,
    );
  });

  it('the exposition parses strictly and carries process, cost and engine metrics; no GPU gauges without NVML', async () => {
    await t.metrics.gpu!.sample();
    t.metrics.tick();
    const m = await scrape(url);
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'tokenmill_time_to_first_token_seconds',
      'tokenmill_usd_per_1k_output_tokens',
      'tokenmill_machine_cost_usd',
      'tokenmill_uptime_seconds',
      'tokenmill_kv_cache_usage_perc',
    ]) {
      assert.ok(m.has(name), name);
    }
    assert.equal(m.get('tokenmill_time_to_first_token_seconds')!.type, 'histogram');
    const allIn = valueOf(m, 'tokenmill_machine_cost_usd', { basis: 'all_in' })!;
    const busy = valueOf(m, 'tokenmill_machine_cost_usd', { basis: 'busy' })!;
    assert.ok(allIn >= busy && busy > 0, `all-in ${allIn} >= busy ${busy} > 0`);
    for (const name of GPU_FAMILIES) assert.ok(!m.has(name), `${name} must be absent without NVML`);
  });

  it('/metrics/series: columns over time with tokens/s, latency percentiles and both cost bases', async () => {
    const before = t.metrics.series.numRows;
    t.metrics.tick();
    await t.server.app.inject({
      method: 'POST',
      url: '/v1/completions',
      headers: { 'content-type': 'application/json' },
      payload: { model: 'tiny', prompt: [9, 9, 9], max_tokens: 12, ignore_eos: true },
    });
    t.metrics.tick();
    const r = await fetch(`${url}/metrics/series`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as {
      series: Record<string, (number | null)[]>;
      totals: Record<string, number>;
      keys: { key: string; cost_usd: number }[];
      gpus: unknown[];
      gpu_reason: string;
    };
    assert.equal(body.series.t!.length, before + 2);
    assert.ok(body.series.out_tok_s!.at(-1)! > 0);
    assert.ok(body.series.ttft_p50_ms!.at(-1)! > 0 && body.series.itl_p99_ms!.at(-1)! >= body.series.itl_p50_ms!.at(-1)!);
    assert.ok(body.series.usd_per_1k_all_in!.at(-1)! >= body.series.usd_per_1k_busy!.at(-1)!);
    assert.ok(body.totals.all_in_usd! >= body.totals.busy_usd!);
    assert.equal(body.totals.usd_per_hour_source as unknown, 'flag');
    assert.equal(body.keys[0]!.key, 'anonymous');
    assert.deepEqual(body.gpus, []);
    assert.match(body.gpu_reason, /cannot load/);
    const last = body.series.t!.at(-1)!;
    const inc = (await (await fetch(`${url}/metrics/series?since=${last}`)).json()) as { series: Record<string, unknown[]> };
    assert.equal(inc.series.t!.length, 0); // incremental: nothing newer than the last row
    assert.equal((await fetch(`${url}/metrics/series?since=abc`)).status, 400);
  });
});

describe('GPU gauges from NVML (native dlopen path)', () => {
  const addon = cpuAddonAvailable();
  const fake = addon.available ? buildFakeNvml() : `CPU addon unavailable: ${addon.reason}`;
  after(() => {
    if (typeof fake !== 'string') fake.dispose();
  });

  it('absent library: an explained unavailable reading, never an error', {
    skip: !addon.available && `CPU addon unavailable: ${addon.reason}`,
  }, async () => {
    const s = await new GpuMonitor({ library: join(tmpdir(), 'no-such-dir', 'libnvidia-ml.so.1') }).sample();
    assert.equal(s.available, false);
    assert.deepEqual(s.devices, []);
    assert.match(s.reason, /cannot load/);
  });

  it('a stand-in libnvidia-ml: gauges per GPU in base units; unsupported readings left out', {
    skip: typeof fake === 'string' && fake,
  }, async () => {
    const lib = (fake as FakeNvml).library;
    const t = await startTinyServer({ server: { seriesIntervalMs: 3_600_000 }, gpu: new GpuMonitor({ library: lib }) });
    try {
      const s = await t.metrics.gpu!.sample();
      assert.equal(s.available, true, s.reason);
      t.metrics.tick();
      const m = parsePrometheusText((await t.metrics.render()).body);
      const g0 = { gpu: '0', name: 'Stand-in GPU' };
      assert.equal(valueOf(m, 'tokenmill_gpu_utilization_ratio', g0), 0.42);
      assert.equal(valueOf(m, 'tokenmill_gpu_memory_used_bytes', g0), 20 * 2 ** 30);
      assert.equal(valueOf(m, 'tokenmill_gpu_memory_total_bytes', g0), 80 * 2 ** 30);
      assert.equal(valueOf(m, 'tokenmill_gpu_power_watts', g0), 250.5);
      assert.equal(valueOf(m, 'tokenmill_gpu_temperature_celsius', g0), 61);
      assert.equal(valueOf(m, 'tokenmill_gpu_sm_clock_hertz', g0), 1980e6);
      assert.equal(valueOf(m, 'tokenmill_gpu_sm_clock_hertz', { gpu: '1' }), undefined); // device 1 does not report it
      const row = t.metrics.series.since();
      assert.ok(row.gpu1_util_pct!.at(-1)! >= 40);
      assert.equal(row.gpu0_mem_total_gib!.at(-1), 80);
    } finally {
      await t.close();
    }
  });
});
