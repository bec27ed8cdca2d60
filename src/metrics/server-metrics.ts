// Prometheus metrics for one server instance (a private prom-client Registry, so several servers in
// one process never share counters). Names mirror vLLM's with a tokenmill_ prefix, plus prom-client's
// process collectors and the NVML GPU gauges. Implements EngineObserver: token counters move every
// engine step; the server records TTFT, ITL, e2e and per-key cost. Also feeds the dashboard's series.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MachinePrice, PriceSource } from './machine-price.js';
import { CostLedger } from './cost.js';
import type { EngineObserver, EngineStepEvent } from './engine-observer.js';
import { registerGpuGauges, type GpuMonitor } from './gpu-monitor.js';
import { LiveSeries } from './live-series.js';
import { PREFILL_BUCKETS, registerCacheConfigInfo, TPOT_BUCKETS, VllmCompatMetrics, type MetricsCompat } from './vllm-compat.js';

export interface EngineGauges {
  readonly numRunning: number;
  readonly numWaiting: number;
  /** 0..1 share of KV blocks in use. */
  readonly kvCacheUsage: number;
  /** KV pool size and block size, for the cache-config info gauge (absent: no info gauge). */
  readonly numTotalBlocks?: number;
  readonly blockSize?: number;
  /** KV blocks free: back to numTotalBlocks when no request holds any (the soak's leak check). */
  readonly numFreeBlocks?: number;
}

/** Requests whose first schedule time is kept for the prefill-time histogram (the oldest go first). */
const MAX_TRACKED_SCHEDULES = 8192;

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

/** How long the process collectors' text (/proc reads: fds, memory, CPU) is reused across scrapes. */
const PROCESS_METRICS_TTL_MS = 1000;

export class ServerMetrics implements EngineObserver {
  readonly registry = new Registry();
  /**
   * prom-client's process and Node collectors, kept apart: they cost most of a scrape (file reads)
   * and change slowly, so their text is rendered at most once per PROCESS_METRICS_TTL_MS while an
   * endpoint picker scrapes every 50 ms. Engine and request series are always fresh.
   */
  private readonly processRegistry = new Registry();
  private processText: { atMs: number; body: string } | null = null;
  readonly ledger: CostLedger;
  readonly modelName: string;
  private gaugesSource: (() => EngineGauges) | null = null;
  readonly series = new LiveSeries();
  readonly gpu: GpuMonitor | null;
  private gpuGauges = false;
  private sampler: NodeJS.Timeout | null = null;
  /** Cumulative counts and latency observations for the series (drained every tick). */
  private numGenerated = 0;
  private numPrefixHits = 0;
  private numPrefixQueries = 0;
  private pendingTtft: number[] = [];
  private pendingItl: number[] = [];

  readonly ttft: Histogram<'model_name'>;
  readonly itl: Histogram<'model_name'>;
  readonly e2e: Histogram<'model_name'>;
  readonly queueTime: Histogram<'model_name'>;
  readonly prefillTime: Histogram<'model_name'>;
  readonly timePerOutputToken: Histogram<'model_name'>;
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
  /** The vLLM-named mirrors (--metrics-compat vllm), or null. */
  readonly compat: VllmCompatMetrics | null;
  /** Engine request id -> when it was first scheduled (ms), until its first token. */
  private readonly scheduledAtMs = new Map<string, number>();
  private readonly nowMs: () => number;

  constructor(opts: {
    modelName: string;
    usdPerHour: number;
    costWindowSeconds?: number;
    gpu?: GpuMonitor;
    now?: () => number;
    priceSource?: PriceSource;
    priceBasis?: string;
    /** Also export the metrics under these engines' names (the tokenmill_* names stay). */
    compat?: MetricsCompat | null;
  }) {
    this.nowMs = opts.now ?? Date.now;
    this.modelName = opts.modelName;
    this.price = { usdPerHour: opts.usdPerHour, source: opts.priceSource ?? 'flag', basis: opts.priceBasis ?? 'configured' };
    this.ledger = new CostLedger({
      usdPerHour: opts.usdPerHour,
      windowSeconds: opts.costWindowSeconds ?? 60,
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.gpu = opts.gpu ?? null;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.processRegistry });
    const m = ['model_name'] as const;
    const hist = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, labelNames: m, buckets, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: m, registers });
    this.ttft = hist('tokenmill_time_to_first_token_seconds', 'Time to first token, from arrival.', LATENCY_BUCKETS);
    this.itl = hist('tokenmill_inter_token_latency_seconds', 'Time between consecutive output tokens.', ITL_BUCKETS);
    this.e2e = hist('tokenmill_e2e_request_latency_seconds', 'End-to-end request latency.', LATENCY_BUCKETS);
    this.queueTime = hist('tokenmill_request_queue_time_seconds', 'Time a request waited before its first schedule.', LATENCY_BUCKETS);
    const prefillHelp = "Time from a request's first schedule to its first token.";
    this.prefillTime = hist('tokenmill_request_prefill_time_seconds', prefillHelp, PREFILL_BUCKETS);
    const tpotHelp = 'Mean time per output token after the first, per request and choice.';
    this.timePerOutputToken = hist('tokenmill_request_time_per_output_token_seconds', tpotHelp, TPOT_BUCKETS);
    this.promptTokens = counter(
      'tokenmill_prompt_tokens_total',
      'Prompt tokens of requests scheduled (counted at their first step, cached included).',
    );
    this.generationTokens = counter('tokenmill_generation_tokens_total', 'Tokens generated (counted every engine step).');
    this.preemptions = counter('tokenmill_num_preemptions_total', 'Preemptions (KV freed, request recomputed).');
    this.prefixHits = counter('tokenmill_prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.');
    this.prefixQueries = counter('tokenmill_prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.');
    this.requestSuccess = new Counter({
      name: 'tokenmill_request_success_total',
      help: 'Finished requests by finish reason.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    this.requestErrors = new Counter({
      name: 'tokenmill_request_errors_total',
      help: 'Failed requests by error code.',
      labelNames: ['model_name', 'code'],
      registers,
    });
    this.costUsd = new Counter({
      name: 'tokenmill_cost_usd_total',
      help: 'USD charged (metrics/cost.ts), per API key id and model.',
      labelNames: ['key', 'model'],
      registers,
    });

    const gauge = (name: string, help: string, read: (g: EngineGauges) => number) => {
      const self = this;
      new Gauge({
        name,
        help,
        labelNames: m,
        registers,
        collect() {
          const g = self.gaugesSource?.();
          if (g) this.set({ model_name: self.modelName }, read(g));
        },
      });
    };
    gauge('tokenmill_num_requests_running', 'Requests in the running batch.', (g) => g.numRunning);
    gauge('tokenmill_num_requests_waiting', 'Requests waiting to be scheduled.', (g) => g.numWaiting);
    gauge('tokenmill_kv_cache_usage_perc', 'KV-cache usage (1 = full).', (g) => g.kvCacheUsage);
    const freeHelp = 'KV-cache blocks free (evictable prefix-cache blocks count as free).';
    gauge('tokenmill_kv_cache_free_blocks', freeHelp, (g) => g.numFreeBlocks ?? Number.NaN);
    gauge('tokenmill_kv_cache_total_blocks', 'KV-cache blocks in the pool.', (g) => g.numTotalBlocks ?? Number.NaN);
    const routing = () => {
      const g = this.gaugesSource?.();
      return g ? { ...g, numTotalBlocks: g.numTotalBlocks ?? 0 } : null;
    };
    registerCacheConfigInfo(this.registry, 'tokenmill_cache_config_info', this.modelName, routing);
    this.compat = opts.compat === 'vllm' ? new VllmCompatMetrics(this.registry, this.modelName, routing) : null;
    const ledger = this.ledger;
    const modelName = this.modelName;
    new Gauge({
      name: 'tokenmill_usd_per_1k_output_tokens',
      help:
        `USD per 1k generated tokens over the last ${ledger.windowMs / 1000}s: basis="busy" charges engine step time, ` +
        'basis="all_in" the wall clock (idle included).',
      labelNames: ['model_name', 'basis'],
      registers,
      collect() {
        // No tokens in the window: cost per token is undefined, so the sample is left out (not NaN).
        const w = ledger.window();
        this.reset();
        if (Number.isFinite(w.busyUsdPer1k)) this.set({ model_name: modelName, basis: 'busy' }, w.busyUsdPer1k);
        if (Number.isFinite(w.allInUsdPer1k)) this.set({ model_name: modelName, basis: 'all_in' }, w.allInUsdPer1k);
      },
    });
    new Gauge({
      name: 'tokenmill_machine_cost_usd',
      help: 'USD since start: basis="busy" = price x engine step time (the sum of every request\'s cost), basis="all_in" = price x uptime.',
      labelNames: ['model_name', 'basis'],
      registers,
      collect() {
        const t = ledger.sinceStart();
        this.set({ model_name: modelName, basis: 'busy' }, t.busyUsd);
        this.set({ model_name: modelName, basis: 'all_in' }, t.allInUsd);
      },
    });
    new Gauge({
      name: 'tokenmill_busy_seconds',
      help: 'Engine step wall time since start.',
      labelNames: m,
      registers,
      collect() {
        this.set({ model_name: modelName }, ledger.sinceStart().busySeconds);
      },
    });
    new Gauge({
      name: 'tokenmill_uptime_seconds',
      help: 'Seconds since the server started (the all-in cost basis).',
      labelNames: m,
      registers,
      collect() {
        this.set({ model_name: modelName }, ledger.uptimeSeconds());
      },
    });
    // prom-client's collectors give RSS, heap used/total, external; array buffers (request bodies,
    // socket buffers) are part of external but are the share a flood of requests moves.
    new Gauge({
      name: 'tokenmill_process_array_buffers_bytes',
      help: 'Bytes held by ArrayBuffers and Buffers (process.memoryUsage().arrayBuffers; part of nodejs_external_memory_bytes).',
      registers,
      collect() {
        this.set(process.memoryUsage().arrayBuffers);
      },
    });
    new Gauge({
      name: 'tokenmill_usd_per_hour',
      help: "The machine price the cost metrics use; source 'flag' (--usd-per-hour) or 'assumed' (the device's default price).",
      labelNames: ['model_name', 'source'],
      registers,
    }).set({ model_name: modelName, source: this.price.source }, opts.usdPerHour);
  }

  /** Where the running/waiting/KV gauges read from at scrape time (usually engine.stats()). */
  bindEngineGauges(source: () => EngineGauges): void {
    this.gaugesSource = source;
  }

  // --- EngineObserver -----------------------------------------------------------------------
  onRequestScheduled(requestId: string, queueSeconds: number): void {
    this.queueTime.observe({ model_name: this.modelName }, queueSeconds);
    if (this.scheduledAtMs.size >= MAX_TRACKED_SCHEDULES) this.scheduledAtMs.delete(this.scheduledAtMs.keys().next().value!);
    this.scheduledAtMs.set(requestId, this.nowMs());
  }
  onPreemption(_requestId: string): void {
    this.preemptions.inc({ model_name: this.modelName });
  }
  onPrefixCacheQuery(numQueriedTokens: number, numHitTokens: number): void {
    this.prefixQueries.inc({ model_name: this.modelName }, numQueriedTokens);
    this.prefixHits.inc({ model_name: this.modelName }, numHitTokens);
    this.compat?.addPrefixQuery(numQueriedTokens, numHitTokens);
    this.numPrefixQueries += numQueriedTokens;
    this.numPrefixHits += numHitTokens;
  }
  onStep(e: EngineStepEvent): void {
    this.ledger.recordStep(e.wallSeconds, e.numGeneratedTokens);
    const model_name = this.modelName;
    if (e.numGeneratedTokens > 0) {
      this.generationTokens.inc({ model_name }, e.numGeneratedTokens);
      this.compat?.addGenerationTokens(e.numGeneratedTokens);
    }
    if ((e.numNewPromptTokens ?? 0) > 0) {
      this.promptTokens.inc({ model_name }, e.numNewPromptTokens);
      this.compat?.addPromptTokens(e.numNewPromptTokens!);
    }
    this.numGenerated += e.numGeneratedTokens;
  }

  // --- server-side --------------------------------------------------------------------------
  observeFirstToken(seconds: number): void {
    this.ttft.observe({ model_name: this.modelName }, seconds);
    keepSample(this.pendingTtft, seconds);
  }
  /** A request's first token arrived (engine request id): its prefill time is since its first schedule. */
  observePrefillDone(requestId: string, atMs = this.nowMs()): void {
    const t0 = this.scheduledAtMs.get(requestId);
    if (t0 === undefined) return;
    this.scheduledAtMs.delete(requestId);
    const s = Math.max(0, atMs - t0) / 1000;
    this.prefillTime.observe({ model_name: this.modelName }, s);
    this.compat?.observePrefill(s);
  }
  /** Forget a request that ended before its first token (abort, error). */
  forgetRequest(requestId: string): void {
    this.scheduledAtMs.delete(requestId);
  }
  /** Mean seconds per output token after the first, of one finished request (or choice). */
  observeTimePerOutputToken(seconds: number): void {
    this.timePerOutputToken.observe({ model_name: this.modelName }, seconds);
    this.compat?.observeTimePerOutputToken(seconds);
  }
  /** An output brought numTokens tokens after gapSeconds: each token gets an equal share. */
  observeInterToken(gapSeconds: number, numTokens: number): void {
    for (let i = 0; i < numTokens; i++) {
      this.itl.observe({ model_name: this.modelName }, gapSeconds / numTokens);
      keepSample(this.pendingItl, gapSeconds / numTokens);
    }
  }
  observeFinished(r: {
    account: string;
    e2eSeconds: number;
    promptTokens: number;
    completionTokens: number;
    costUsd: number;
    finishReasons: readonly string[];
  }): void {
    const model_name = this.modelName;
    this.e2e.observe({ model_name }, r.e2eSeconds);
    for (const reason of r.finishReasons) this.requestSuccess.inc({ model_name, finished_reason: reason });
    this.chargeKey(r.account, r);
  }
  /** Charge a request's cost to its key (finished ones through observeFinished; failed ones directly). */
  chargeKey(account: string, r: { promptTokens: number; completionTokens: number; costUsd: number }): void {
    this.costUsd.inc({ key: account, model: this.modelName }, r.costUsd);
    this.ledger.recordRequest(account, r);
  }
  observeError(code: string): void {
    this.requestErrors.inc({ model_name: this.modelName, code });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const now = Date.now();
    if (this.processText === null || now - this.processText.atMs >= PROCESS_METRICS_TTL_MS) {
      this.processText = { atMs: now, body: await this.processRegistry.metrics() };
    }
    return { contentType: this.registry.contentType, body: (await this.registry.metrics()) + this.processText.body };
  }

  // --- dashboard series ---------------------------------------------------------------------
  /** Sample the series (and read the GPUs, off the event loop) every intervalMs until stopSampling. */
  startSampling(intervalMs = 1000): void {
    if (this.sampler !== null) return;
    void this.gpu?.sample();
    this.sampler = setInterval(() => this.tick(), intervalMs);
    this.sampler.unref();
  }

  stopSampling(): void {
    if (this.sampler !== null) clearInterval(this.sampler);
    this.sampler = null;
  }

  /** One series row now (the timer calls it; tests may too). Uses the GPU reading of the last tick. */
  tick(atMs = Date.now()): void {
    if (this.gpu !== null) {
      if (!this.gpuGauges) this.gpuGauges = registerGpuGauges(this.registry, this.gpu);
      void this.gpu.sample();
    }
    const g = this.gaugesSource?.() ?? null;
    this.series.record(atMs, {
      generatedTokens: this.numGenerated,
      prefixHitTokens: this.numPrefixHits,
      prefixQueryTokens: this.numPrefixQueries,
      engine: g,
      ttftSeconds: this.pendingTtft,
      itlSeconds: this.pendingItl,
      cost: this.ledger.window(),
      gpu: this.gpu?.latest ?? null,
    });
    this.pendingTtft = [];
    this.pendingItl = [];
  }
}

/** Latency observations kept per tick: a uniform reservoir beyond this many. */
const MAX_SAMPLES_PER_TICK = 4096;

function keepSample(list: number[], v: number): void {
  if (list.length < MAX_SAMPLES_PER_TICK) list.push(v);
  else list[Math.floor(Math.random() * MAX_SAMPLES_PER_TICK)] = v;
}
