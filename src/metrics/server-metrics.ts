// Prometheus metrics for one server instance (a private prom-client Registry, so several servers in
// one process never share counters). Names mirror vLLM's with a tokenmill_ prefix. Implements
// EngineObserver for engine-side events; the server records TTFT, ITL, e2e, tokens and cost itself.

import type { MachinePrice, PriceSource } from './machine-price.js';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CostLedger } from './cost.js';
import type { EngineObserver, EngineStepEvent } from './engine-observer.js';

export interface EngineGauges {
  readonly numRunning: number;
  readonly numWaiting: number;
  /** 0..1 share of KV blocks in use. */
  readonly kvCacheUsage: number;
}

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

export class ServerMetrics implements EngineObserver {
  readonly registry = new Registry();
  readonly ledger: CostLedger;
  readonly modelName: string;
  private gaugesSource: (() => EngineGauges) | null = null;

  readonly ttft: Histogram<'model_name'>;
  readonly itl: Histogram<'model_name'>;
  readonly e2e: Histogram<'model_name'>;
  readonly queueTime: Histogram<'model_name'>;
  readonly promptTokens: Counter<'model_name'>;
  readonly generationTokens: Counter<'model_name'>;
  readonly requestSuccess: Counter<'model_name' | 'finished_reason'>;
  readonly requestErrors: Counter<'model_name' | 'code'>;
  readonly preemptions: Counter<'model_name'>;
  readonly prefixHits: Counter<'model_name'>;
  readonly prefixQueries: Counter<'model_name'>;
  readonly costUsd: Counter<'key' | 'model'>;

  /** The machine price in force and where it came from (machine-price.ts); source 'flag' unless told otherwise. */
  readonly price: MachinePrice;

  constructor(opts: { modelName: string; usdPerHour: number; costWindowSeconds?: number; priceSource?: PriceSource; priceBasis?: string }) {
    this.modelName = opts.modelName;
    this.price = { usdPerHour: opts.usdPerHour, source: opts.priceSource ?? 'flag', basis: opts.priceBasis ?? 'configured' };
    this.ledger = new CostLedger({ usdPerHour: opts.usdPerHour, windowSeconds: opts.costWindowSeconds ?? 60 });
    const registers = [this.registry];
    const m = ['model_name'] as const;
    const hist = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, labelNames: m, buckets, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: m, registers });
    this.ttft = hist('tokenmill_time_to_first_token_seconds', 'Time to first token, from arrival.', LATENCY_BUCKETS);
    this.itl = hist('tokenmill_inter_token_latency_seconds', 'Time between consecutive output tokens.', ITL_BUCKETS);
    this.e2e = hist('tokenmill_e2e_request_latency_seconds', 'End-to-end request latency.', LATENCY_BUCKETS);
    this.queueTime = hist('tokenmill_request_queue_time_seconds', 'Time a request waited before its first schedule.', LATENCY_BUCKETS);
    this.promptTokens = counter('tokenmill_prompt_tokens_total', 'Prompt tokens processed.');
    this.generationTokens = counter('tokenmill_generation_tokens_total', 'Tokens generated.');
    this.preemptions = counter('tokenmill_num_preemptions_total', 'Preemptions (KV freed, request recomputed).');
    this.prefixHits = counter('tokenmill_prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.');
    this.prefixQueries = counter('tokenmill_prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
    this.requestSuccess = new Counter({ name: 'tokenmill_request_success_total', help: 'Finished requests by finish reason.', labelNames: ['model_name', 'finished_reason'], registers });
    this.requestErrors = new Counter({ name: 'tokenmill_request_errors_total', help: 'Failed requests by error code.', labelNames: ['model_name', 'code'], registers });
    this.costUsd = new Counter({ name: 'tokenmill_cost_usd_total', help: 'USD charged (metrics/cost.ts), per API key id and model.', labelNames: ['key', 'model'], registers });

    const gauge = (name: string, help: string, read: (g: EngineGauges) => number) => {
      const self = this;
      new Gauge({
        name, help, labelNames: m, registers,
        collect() {
          const g = self.gaugesSource?.();
          if (g) this.set({ model_name: self.modelName }, read(g));
        },
      });
    };
    gauge('tokenmill_num_requests_running', 'Requests in the running batch.', (g) => g.numRunning);
    gauge('tokenmill_num_requests_waiting', 'Requests waiting to be scheduled.', (g) => g.numWaiting);
    gauge('tokenmill_kv_cache_usage_perc', 'KV-cache usage (1 = full).', (g) => g.kvCacheUsage);
    const ledger = this.ledger;
    const modelName = this.modelName;
    new Gauge({
      name: 'tokenmill_usd_per_1k_output_tokens',
      help: `USD per 1k generated tokens over the last ${ledger.windowMs / 1000}s (usdPerHour / 3600 * wallSeconds / (tokens / 1000)).`,
      labelNames: m, registers,
      collect() { this.set({ model_name: modelName }, ledger.windowUsdPer1kTokens()); },
    });
    new Gauge({
      name: 'tokenmill_usd_per_hour', help: "The machine price the cost metrics use; source 'flag' (--usd-per-hour) or 'assumed' (the device's default price).",
      labelNames: ['model_name', 'source'], registers,
    }).set({ model_name: modelName, source: this.price.source }, opts.usdPerHour);
  }

  /** Where the running/waiting/KV gauges read from at scrape time (usually engine.stats()). */
  bindEngineGauges(source: () => EngineGauges): void {
    this.gaugesSource = source;
  }

  // --- EngineObserver -----------------------------------------------------------------------
  onRequestScheduled(_requestId: string, queueSeconds: number): void {
    this.queueTime.observe({ model_name: this.modelName }, queueSeconds);
  }
  onPreemption(_requestId: string): void {
    this.preemptions.inc({ model_name: this.modelName });
  }
  onPrefixCacheQuery(numQueriedTokens: number, numHitTokens: number): void {
    this.prefixQueries.inc({ model_name: this.modelName }, numQueriedTokens);
    this.prefixHits.inc({ model_name: this.modelName }, numHitTokens);
  }
  onStep(e: EngineStepEvent): void {
    this.ledger.recordStep(e.wallSeconds, e.numGeneratedTokens);
  }

  // --- server-side --------------------------------------------------------------------------
  observeFirstToken(seconds: number): void {
    this.ttft.observe({ model_name: this.modelName }, seconds);
  }
  /** An output brought numTokens tokens after gapSeconds: each token gets an equal share. */
  observeInterToken(gapSeconds: number, numTokens: number): void {
    for (let i = 0; i < numTokens; i++) this.itl.observe({ model_name: this.modelName }, gapSeconds / numTokens);
  }
  observeFinished(r: { account: string; e2eSeconds: number; promptTokens: number; completionTokens: number; costUsd: number; finishReasons: readonly string[] }): void {
    const model_name = this.modelName;
    this.e2e.observe({ model_name }, r.e2eSeconds);
    this.promptTokens.inc({ model_name }, r.promptTokens);
    this.generationTokens.inc({ model_name }, r.completionTokens);
    for (const reason of r.finishReasons) this.requestSuccess.inc({ model_name, finished_reason: reason });
    this.costUsd.inc({ key: r.account, model: model_name }, r.costUsd);
    this.ledger.recordRequest(r.account, r);
  }
  observeError(code: string): void {
    this.requestErrors.inc({ model_name: this.modelName, code });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
