// Engine: the synchronous core of serving. addRequest() admits (or throws), step() runs one
// iteration: schedule -> ModelRunner.execute -> scheduler.update -> output processing (stop checks,
// text; embedding requests finish with their pooled vector once their prompt is computed) -> cost
// apportioning -> EngineOutputs. abortRequest() frees a request's blocks at once.
// One caller at a time (AsyncEngine serializes); it owns no event loop and no streams.
import { apportionStepCost } from '../metrics/cost.js';
import type { EngineObserver } from '../metrics/engine-observer.js';
import { invariant } from '../util/invariant.js';
import { log } from '../util/logger.js';
import type { EngineOutput, EngineRequest, EngineStats } from './engine-api.js';
import { resolveEngineConfig, type EngineOptions, type ResolvedEngineConfig, type SamplerFactory } from './engine-config.js';
import { BlockPool } from './kv/block-pool.js';
import { KvEventBuffer, type KvEventSink } from './kv/kv-events.js';
import { KvCacheManager } from './kv/kv-cache-manager.js';
import { ModelRunner } from './model-runner.js';
import { EmbeddingPooler } from './pooling.js';
import { detokenizerFor, SequenceOutput, type DetokenizerFactory } from './output-processor.js';
import { Request, type Sequence } from './request.js';
import { createSequenceSampler, type SequenceSampler } from './sampler.js';
import type { FinishReason } from './sampling-params.js';
import { validateEngineRequest } from './request-validate.js';
import { Scheduler } from './scheduler.js';
import { EngineGrammar } from './grammar/engine-grammar.js';
import { isGrammarVocabSource } from './grammar/grammar-vocab.js';
import type { SamplingParams } from './sampling-params.js';

interface SeqState {
  readonly sampler: SequenceSampler;
  readonly output: SequenceOutput;
  /** Embedding requests only. */
  readonly pooler: EmbeddingPooler | null;
}

export class Engine {
  readonly config: ResolvedEngineConfig;
  readonly kv: KvCacheManager;
  readonly scheduler: Scheduler;
  readonly runner: ModelRunner;
  private readonly requests = new Map<string, Request>();
  private readonly states = new Map<Sequence, SeqState>();
  private readonly observer: EngineObserver;
  /** This step's prefix-cache events and where they go (null: not asked for). */
  private readonly kvEvents: { buffer: KvEventBuffer; sink: KvEventSink } | null;
  private readonly detokenizer: DetokenizerFactory | null;
  private readonly now: () => number;
  private readonly grammar: EngineGrammar;
  private readonly samplerFactory: SamplerFactory;
  private arrivals = 0;
  private numQueued = 0;

  constructor(opts: EngineOptions) {
    this.config = resolveEngineConfig(opts);
    const c = this.config;
    this.kvEvents = opts.kvEvents !== undefined ? { buffer: new KvEventBuffer(), sink: opts.kvEvents } : null;
    this.kv = new KvCacheManager(new BlockPool(c.numBlocks, c.blockSize, c.enablePrefixCaching, this.kvEvents?.buffer ?? null));
    this.scheduler = new Scheduler(
      {
        maxNumBatchedTokens: c.maxNumBatchedTokens,
        maxNumSeqs: c.maxNumSeqs,
        maxModelLen: c.maxModelLen,
        enableChunkedPrefill: c.enableChunkedPrefill,
        policy: c.schedulingPolicy,
      },
      this.kv,
    );
    this.runner = new ModelRunner(opts.model, {
      maxNumTokens: c.maxNumBatchedTokens,
      maxNumSeqs: c.maxNumSeqs,
      maxModelLen: c.maxModelLen,
      numBlocks: c.numBlocks,
      blockSize: c.blockSize,
      deviceSampling: c.deviceSampling,
      decodeGraphs: c.decodeGraphs,
      deviceGrammarMasks: c.deviceGrammarMasks,
    });
    this.observer = opts.observer ?? {};
    this.detokenizer = opts.detokenizer ?? (opts.tokenizer !== undefined ? detokenizerFor(opts.tokenizer) : null);
    this.now = opts.now ?? (() => performance.now());
    const vocab = opts.grammarVocab ?? (isGrammarVocabSource(opts.tokenizer) ? opts.tokenizer : null);
    this.grammar = new EngineGrammar(vocab, this.runner.vocabSize, this.config.eosTokenIds);
    this.samplerFactory = opts.samplerFactory ?? createSequenceSampler;
  }

  get maxModelLen(): number {
    return this.config.maxModelLen;
  }

  /** Requests admitted and not yet scheduled for the first time. */
  get numQueuedRequests(): number {
    return this.numQueued;
  }

  get numUnfinishedRequests(): number {
    return this.requests.size;
  }

  hasRequest(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  requestIds(): string[] {
    return [...this.requests.keys()];
  }

  hasWork(): boolean {
    return this.scheduler.hasWork();
  }

  /**
   * Make a request's constraint ready (load the grammar engine and the vocabulary once, compile the
   * grammar or find it cached); addRequest() of a constrained request needs it done. Throws the
   * 400s of validateRequest() and invalid_schema when the grammar compiler rejects it.
   */
  async prepare(params: SamplingParams): Promise<void> {
    if (params.constraint !== null) await this.grammar.prepare(params.constraint);
  }

  /** Whether addRequest() can take these params now (no constraint, or its grammar compiled). */
  isPrepared(params: SamplingParams): boolean {
    return params.constraint === null || this.grammar.compiled(params.constraint) !== null;
  }

  /** The one validation boundary (request-validate.ts) plus the constraint's schema 400s; queues nothing. */
  validateRequest(er: EngineRequest): void {
    const limits = {
      vocabSize: this.runner.vocabSize,
      maxModelLen: this.config.maxModelLen,
      canEmbed: this.runner.model.hiddenOutput !== undefined,
    };
    validateEngineRequest(er, limits);
    if (er.params.constraint !== null) this.grammar.check(er.params.constraint);
  }

  /**
   * Validate and queue a request. Throws invalid_argument or context_length_exceeded (and the
   * schema 400s); a constrained request must be prepare()d first.
   */
  addRequest(er: EngineRequest): Request {
    this.validateRequest(er);
    return this.admit(er);
  }

  /**
   * Queue a request validateRequest() accepted (AsyncEngine validates once, at submission). The
   * asserts guard state only: a duplicate id would orphan the first request's KV blocks, and a
   * constraint without its compiled grammar would leave a sequence with no mask.
   */
  admit(er: EngineRequest): Request {
    const vocab = this.runner.vocabSize;
    const prompt = er.promptTokenIds;
    const p = er.params;
    const pooling = er.pooling ?? null;
    invariant(!this.requests.has(er.requestId), () => `duplicate request id ${er.requestId}`);
    const compiled = p.constraint === null ? null : this.grammar.compiled(p.constraint);
    invariant(
      p.constraint === null || compiled !== null,
      () => `request ${er.requestId}: its constraint is not compiled; await engine.prepare(params) first`,
    );
    const req = new Request({ ...er, arrivalOrder: this.arrivals++, arrivalTimeMs: this.now() });
    const states = req.sequences.map((seq) => ({
      seq,
      state: {
        sampler: this.samplerFactory(p, prompt, {
          vocabSize: vocab,
          stream: seq.index,
          grammar: compiled === null ? null : this.grammar.sequenceGrammar(compiled),
        }),
        output: new SequenceOutput(seq, this.config.eosTokenIds, this.detokenizer),
        pooler: pooling === null ? null : new EmbeddingPooler(pooling, this.runner.model.config.hiddenSize),
      },
    }));
    for (const { seq, state } of states) this.states.set(seq, state);
    this.requests.set(req.requestId, req);
    this.numQueued++;
    this.scheduler.addRequest(req);
    return req;
  }

  /** Finish every choice of a request with 'abort' (blocks freed now); its final outputs. */
  abortRequest(requestId: string, reason: FinishReason = 'abort'): EngineOutput[] {
    const req = this.requests.get(requestId);
    if (req === undefined) return [];
    if (!req.sequences[0]!.scheduledOnce) this.numQueued--;
    const outs: EngineOutput[] = [];
    for (const seq of req.sequences) {
      const st = this.states.get(seq)!;
      if (!seq.isFinished) {
        st.output.endEarly();
        this.scheduler.finish(seq, reason);
      }
      if (!st.output.done) outs.push(st.output.take(true, seq.finishReason));
    }
    this.forget(req);
    return outs;
  }

  /** One iteration. Throws only on a fatal fault (a kernel error, a broken invariant). */
  async step(): Promise<EngineOutput[]> {
    const t0 = this.now();
    const out = this.scheduler.schedule();
    for (const id of out.preemptedSeqIds) this.notify((o) => o.onPreemption?.(id.slice(0, id.lastIndexOf('#'))));
    let numPrefill = 0;
    let numNewPrompt = 0;
    for (const s of out.scheduled) {
      const seq = s.seq;
      numPrefill += Math.max(0, Math.min(s.numComputedBefore + s.numTokens, seq.numPromptTokens) - s.numComputedBefore);
      if (seq.firstScheduledTimeMs < 0) {
        seq.firstScheduledTimeMs = t0;
        this.notify((o) => o.onPrefixCacheQuery?.(seq.numTokens, seq.numCachedPromptTokens));
        if (seq.index === 0) {
          this.numQueued--;
          numNewPrompt += seq.numPromptTokens;
          this.notify((o) => o.onRequestScheduled?.(seq.request.requestId, (t0 - seq.request.arrivalTimeMs) / 1000));
        }
      }
    }
    if (out.scheduled.length === 0) return [];

    const sampled = await this.runner.execute(
      out,
      (seq) => this.states.get(seq)!.sampler,
      (seq) => this.states.get(seq)!.pooler!,
    );
    const tokens = new Map<Sequence, number>();
    for (const [seq, tok] of sampled) tokens.set(seq, tok.tokenId);
    this.scheduler.update(out, tokens);

    const touched = new Set<Sequence>();
    const tNow = this.now();
    // Embedding requests end as soon as their whole prompt is computed (their pooler holds the result).
    const pooled = new Set<Sequence>();
    for (const s of out.scheduled) {
      const seq = s.seq;
      if (seq.request.pooling === null || seq.isFinished || seq.numComputedTokens < seq.numPromptTokens) continue;
      pooled.add(seq);
      touched.add(seq);
      seq.firstTokenTimeMs = seq.lastTokenTimeMs = tNow;
      this.scheduler.finish(seq, 'stop');
    }
    for (const [seq, tok] of sampled) {
      if (seq.isFinished) continue;
      const st = this.states.get(seq)!;
      if (seq.firstTokenTimeMs < 0) seq.firstTokenTimeMs = tNow;
      seq.lastTokenTimeMs = tNow;
      touched.add(seq);
      let reason = st.output.push(tok);
      if (reason === null && st.sampler.grammar?.isTerminated === true) {
        st.output.endEarly(); // the grammar accepted a stop token the stop checker ignores (ignore_eos)
        reason = 'stop';
      }
      if (reason === null && seq.numTokens >= this.config.maxModelLen) {
        st.output.endEarly();
        reason = 'length';
      }
      if (reason !== null) this.scheduler.finish(seq, reason);
    }

    const wallSeconds = (this.now() - t0) / 1000;
    if (this.config.usdPerHour > 0) {
      // Weighted by tokens processed: a prefill chunk (or an embedding's prompt) is paid for by its own request.
      const shares = out.scheduled.map((s) => ({ requestId: s.seq.seqId, numTokens: s.numTokens }));
      const usd = apportionStepCost(this.config.usdPerHour, wallSeconds, shares);
      for (const s of out.scheduled) s.seq.costUsd += usd.get(s.seq.seqId) ?? 0;
    }
    const outputs: EngineOutput[] = [];
    for (const seq of touched) {
      const st = this.states.get(seq)!;
      if (st.output.done) continue;
      const o = st.output.take(seq.isFinished, seq.finishReason);
      outputs.push(pooled.has(seq) ? { ...o, embedding: st.pooler!.result() } : o);
      if (seq.request.isFinished) this.forget(seq.request);
    }
    this.notify((o) =>
      o.onStep?.({ wallSeconds, numGeneratedTokens: sampled.size, numPrefillTokens: numPrefill, numNewPromptTokens: numNewPrompt }),
    );
    this.publishKvEvents();
    return outputs;
  }

  stats(): EngineStats {
    return {
      numRunning: this.scheduler.numRunning,
      numWaiting: this.scheduler.numWaiting,
      kvCacheUsage: this.kv.usage,
      numFreeBlocks: this.kv.numFreeBlocks,
      numTotalBlocks: this.kv.numTotalBlocks,
      blockSize: this.kv.blockSize,
    };
  }

  /** Free the KV cache and step buffers (not the model). */
  dispose(): void {
    this.runner.dispose();
  }

  private forget(req: Request): void {
    if (!req.isFinished) return;
    if (!req.sequences.every((s) => this.states.get(s)?.output.done ?? true)) return;
    for (const s of req.sequences) {
      this.states.get(s)?.sampler.dispose();
      this.states.delete(s);
    }
    this.requests.delete(req.requestId);
  }

  /** Hand this step's prefix-cache events to the sink (one batch per step, as vLLM publishes them). */
  private publishKvEvents(): void {
    const k = this.kvEvents;
    if (k === null || k.buffer.size === 0) return;
    try {
      k.sink.publish(k.buffer.drain());
    } catch (e) {
      log.warn(`KV event sink threw: ${(e as Error).message}`);
    }
  }

  private notify(fn: (o: EngineObserver) => void): void {
    try {
      fn(this.observer);
    } catch (e) {
      log.warn(`engine observer threw: ${(e as Error).message}`);
    }
  }
}
