// cost.ts: the one formula, step apportioning, per-account totals and the sliding window; and the
// Prometheus exposure of ServerMetrics (private registry, vLLM-style names).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apportionStepCost, CostLedger, usdPer1kTokens, wallCostUsd } from '../../src/metrics/cost.js';
import { ServerMetrics } from '../../src/metrics/server-metrics.js';

describe('cost formula', () => {
  it('usdPer1kTok = usdPerHour / 3600 * wallSeconds / (tokens / 1000)', () => {
    assert.equal(usdPer1kTokens(3.6, 10, 1000), 0.01);
    assert.equal(usdPer1kTokens(2, 3600, 500), 4);
    assert.ok(Number.isNaN(usdPer1kTokens(2, 1, 0)));
    assert.equal(wallCostUsd(3600, 2), 2);
  });

  it('apportions a step by the tokens each request processed: a prefill chunk pays for itself', () => {
    // One 30-token prefill chunk shares a step with 2 decodes: the chunk's request pays 30/32 of it.
    const a = apportionStepCost(3600, 1, [
      { requestId: 'p', numTokens: 30 },
      { requestId: 'd1', numTokens: 1 },
      { requestId: 'd2', numTokens: 1 },
    ]);
    assert.equal(a.get('p'), 30 / 32);
    assert.equal(a.get('d1'), 1 / 32);
    const decodeOnly = apportionStepCost(3600, 1, [
      { requestId: 'd1', numTokens: 1 },
      { requestId: 'd2', numTokens: 1 },
    ]);
    assert.equal(decodeOnly.get('d1'), 0.5);
    const total = [...a.values()].reduce((x, y) => x + y, 0);
    assert.ok(Math.abs(total - 1) < 1e-15); // no wall time lost
    assert.equal(apportionStepCost(3600, 2, [{ requestId: 'x', numTokens: 0 }]).get('x'), 2); // degenerate: split evenly
  });

  it('ledger: busy and all-in since start; all-in is price x uptime, idle included', () => {
    let now = 1000;
    const l = new CostLedger({ usdPerHour: 3.6, windowSeconds: 10, now: () => now });
    now += 100_000; // 100 s, of which 10 s busy producing 1000 tokens
    l.recordStep(10, 1000);
    const t = l.sinceStart();
    assert.equal(t.wallSeconds, 100);
    assert.ok(Math.abs(t.allInUsd - 0.1) < 1e-12);
    assert.ok(Math.abs(t.busyUsd - 0.01) < 1e-12);
    assert.ok(Math.abs(t.busyUsdPer1k - 0.01) < 1e-12);
    assert.ok(Math.abs(t.allInUsdPer1k - 0.1) < 1e-12);
    const w = l.window(); // the window is 10 s of wall time, all busy
    assert.ok(Math.abs(w.allInUsdPer1k - 0.01) < 1e-12);
  });

  it('ledger: totals per account and a sliding window over steps', () => {
    let now = 0;
    const l = new CostLedger({ usdPerHour: 3.6, windowSeconds: 10, now: () => now });
    assert.ok(Number.isNaN(l.windowUsdPer1kTokens()));
    l.recordRequest('k1', { promptTokens: 5, completionTokens: 1000, costUsd: 0.01 });
    l.recordRequest('k1', { promptTokens: 5, completionTokens: 10, costUsd: 0.5 });
    l.recordRequest('k2', { promptTokens: 1, completionTokens: 1, costUsd: 0.25 });
    assert.deepEqual(l.totals().get('k1'), { numRequests: 2, promptTokens: 10, completionTokens: 1010, costUsd: 0.51 });
    // From requests while the engine reports no steps: (0.76 USD) / 1.011k tokens.
    assert.ok(Math.abs(l.windowUsdPer1kTokens() - 0.76 / 1.011) < 1e-9);
    l.recordStep(10, 1000); // 10 s at $3.6/h = $0.01 for 1k tokens
    assert.ok(Math.abs(l.windowUsdPer1kTokens() - 0.01) < 1e-12);
    now = 20_000;
    l.recordStep(5, 250);
    assert.ok(Math.abs(l.windowUsdPer1kTokens() - 0.02) < 1e-12);
  });
});

describe('ServerMetrics', () => {
  it('exposes vLLM-mirroring names from a private registry', async () => {
    const a = new ServerMetrics({ modelName: 'm', usdPerHour: 3.6 });
    const b = new ServerMetrics({ modelName: 'm', usdPerHour: 1 });
    a.bindEngineGauges(() => ({ numRunning: 2, numWaiting: 3, kvCacheUsage: 0.5 }));
    a.onRequestScheduled('r', 0.1);
    a.onPreemption('r');
    a.onPrefixCacheQuery(10, 4);
    a.onStep({ wallSeconds: 10, numGeneratedTokens: 1000, numNewPromptTokens: 10 });
    a.observeFirstToken(0.2);
    a.observeInterToken(0.1, 2);
    a.observeFinished({
      account: 'k1-abcd',
      e2eSeconds: 1,
      promptTokens: 10,
      completionTokens: 5,
      costUsd: 0.001,
      finishReasons: ['stop', 'length'],
    });
    const text = (await a.render()).body;
    const expect = [
      'tokenmill_num_requests_running{model_name="m"} 2',
      'tokenmill_num_requests_waiting{model_name="m"} 3',
      'tokenmill_kv_cache_usage_perc{model_name="m"} 0.5',
      'tokenmill_num_preemptions_total{model_name="m"} 1',
      'tokenmill_prefix_cache_hits_total{model_name="m"} 4',
      'tokenmill_prefix_cache_queries_total{model_name="m"} 10',
      'tokenmill_prompt_tokens_total{model_name="m"} 10',
      'tokenmill_generation_tokens_total{model_name="m"} 1000',
      'tokenmill_request_success_total{model_name="m",finished_reason="stop"} 1',
      'tokenmill_cost_usd_total{key="k1-abcd",model="m"} 0.001',
      'tokenmill_usd_per_1k_output_tokens{model_name="m",basis="busy"} 0.01',
      'tokenmill_machine_cost_usd{model_name="m",basis="busy"} 0.01',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'tokenmill_request_queue_time_seconds_count{model_name="m"} 1',
      'tokenmill_time_to_first_token_seconds_count{model_name="m"} 1',
      'tokenmill_inter_token_latency_seconds_count{model_name="m"} 2',
      'tokenmill_e2e_request_latency_seconds_count{model_name="m"} 1',
    ];
    for (const line of expect) assert.ok(text.includes(line), line);
    assert.ok(!(await b.render()).body.includes('k1-abcd'));
  });
});
