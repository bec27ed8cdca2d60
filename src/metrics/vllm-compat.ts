// The routing contract's metrics: the KV-cache config info gauge (tokenmill_cache_config_info, always)
// and, with --metrics-compat vllm, the vLLM names that the Gateway API Inference Extension's endpoint
// picker (its default "vllm" engine config), OpenCost and existing Grafana boards read. The tokenmill_*
// series stay primary; these mirror them with the same model_name label. Never recomputes anything:
// gauges read the same engine snapshot at scrape time, counters and histograms get the same values.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type MetricsCompat = 'vllm';
export const METRICS_COMPAT_CHOICES = ['vllm'] as const;

/** What the gauges read at scrape time (ServerMetrics' engine snapshot). */
export interface RoutingGauges {
  readonly numRunning: number;
  readonly numWaiting: number;
  readonly kvCacheUsage: number;
  readonly numTotalBlocks: number;
  /** Tokens per KV block; absent from engines that do not page their cache (then no info gauge). */
  readonly blockSize?: number;
}

/** The vLLM histogram buckets for the two request-phase series (vLLM v1's defaults). */
export const PREFILL_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
export const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

/** Register a cache-config info gauge: value 1, labels block_size and num_gpu_blocks (what the picker parses). */
export function registerCacheConfigInfo(registry: Registry, name: string, modelName: string, read: () => RoutingGauges | null): void {
  new Gauge({
    name,
    help: 'KV cache configuration (value 1): block_size tokens per block, num_gpu_blocks blocks in the pool.',
    labelNames: ['model_name', 'block_size', 'num_gpu_blocks'],
    registers: [registry],
    collect() {
      const g = read();
      this.reset();
      if (g?.blockSize !== undefined)
        this.set({ model_name: modelName, block_size: String(g.blockSize), num_gpu_blocks: String(g.numTotalBlocks) }, 1);
    },
  });
}

/** The vLLM-named mirrors. ServerMetrics forwards every update to it when compat is on. */
export class VllmCompatMetrics {
  private readonly labels: { model_name: string };
  private readonly promptTokens: Counter<'model_name'>;
  private readonly generationTokens: Counter<'model_name'>;
  private readonly prefixHits: Counter<'model_name'>;
  private readonly prefixQueries: Counter<'model_name'>;
  private readonly prefillTime: Histogram<'model_name'>;
  private readonly tpot: Histogram<'model_name'>;

  constructor(registry: Registry, modelName: string, read: () => RoutingGauges | null) {
    this.labels = { model_name: modelName };
    const registers = [registry];
    const labelNames = ['model_name'] as const;
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    const gauge = (name: string, help: string, pick: (g: RoutingGauges) => number) => {
      const labels = this.labels;
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const g = read();
          if (g) this.set(labels, pick(g));
        },
      });
    };
    gauge('vllm:num_requests_running', 'Requests in the running batch (tokenmill_num_requests_running).', (g) => g.numRunning);
    gauge('vllm:num_requests_waiting', 'Requests waiting to be scheduled (tokenmill_num_requests_waiting).', (g) => g.numWaiting);
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage, 1 = full (tokenmill_kv_cache_usage_perc).', (g) => g.kvCacheUsage);
    registerCacheConfigInfo(registry, 'vllm:cache_config_info', modelName, read);
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Prompt tokens (tokenmill_prompt_tokens_total).');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Generated tokens (tokenmill_generation_tokens_total).');
    this.prefixHits = counter(
      'vllm:prefix_cache_hits_total',
      'Prompt tokens found in the prefix cache (tokenmill_prefix_cache_hits_total).',
    );
    this.prefixQueries = counter(
      'vllm:prefix_cache_queries_total',
      'Prompt tokens looked up in the prefix cache (tokenmill_prefix_cache_queries_total).',
    );
    this.prefillTime = new Histogram({
      name: 'vllm:request_prefill_time_seconds',
      help: 'Time from first schedule to first token (tokenmill_request_prefill_time_seconds).',
      labelNames,
      registers,
      buckets: PREFILL_BUCKETS,
    });
    this.tpot = new Histogram({
      name: 'vllm:request_time_per_output_token_seconds',
      help: 'Mean time per output token after the first, per request (tokenmill_request_time_per_output_token_seconds).',
      labelNames,
      registers,
      buckets: TPOT_BUCKETS,
    });
    // Present from the first scrape (at 0), as vLLM's are: boards and recording rules need the series.
    for (const c of [this.promptTokens, this.generationTokens, this.prefixHits, this.prefixQueries]) c.inc(this.labels, 0);
  }

  addPromptTokens(n: number): void {
    this.promptTokens.inc(this.labels, n);
  }
  addGenerationTokens(n: number): void {
    this.generationTokens.inc(this.labels, n);
  }
  addPrefixQuery(numQueried: number, numHits: number): void {
    this.prefixQueries.inc(this.labels, numQueried);
    this.prefixHits.inc(this.labels, numHits);
  }
  observePrefill(seconds: number): void {
    this.prefillTime.observe(this.labels, seconds);
  }
  observeTimePerOutputToken(seconds: number): void {
    this.tpot.observe(this.labels, seconds);
  }
}
