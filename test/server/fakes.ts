// Deterministic fakes for server tests: a byte-level ModelFrontend and an EngineClient that
// "generates" from a seeded PRNG (greedy: a fixed cycle of text), honouring n, stop strings,
// max tokens, logprobs, abort, a bounded queue, drain, and a switchable fatal fault.

import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineClient, EngineOutput, EngineRequest, EngineStats, TokenLogprob } from '../../src/engine/engine-api.js';
import { apportionStepCost } from '../../src/metrics/cost.js';
import type { EngineObserver } from '../../src/metrics/engine-observer.js';
import type { ChatMessage, ModelFrontend } from '../../src/server/frontend.js';
import { TokenmillError } from '../../src/util/errors.js';

export const BOS = 256;
export const EOS = 257;

export class FakeFrontend implements ModelFrontend {
  readonly eosTokenIds = [EOS];
  readonly vocabSize = 258;
  async encode(text: string, opts?: { addSpecialTokens?: boolean }): Promise<number[]> {
    const ids = [...Buffer.from(text, 'utf8')];
    return opts?.addSpecialTokens ? [BOS, ...ids] : ids;
  }
  async decode(ids: readonly number[]): Promise<string> {
    return Buffer.from(ids.filter((i) => i < 256)).toString('utf8');
  }
  async renderChat(messages: readonly ChatMessage[], opts: { addGenerationPrompt: boolean }): Promise<string> {
    return messages.map((m) => `<${m.role}>${m.content}\n`).join('') + (opts.addGenerationPrompt ? '<assistant>' : '');
  }
  async tokenText(id: number): Promise<string> {
    return id === BOS ? '<s>' : id === EOS ? '</s>' : String.fromCharCode(id);
  }
  async tokenBytes(id: number): Promise<readonly number[]> {
    return [...Buffer.from(await this.tokenText(id), 'utf8')];
  }
}

export const GREEDY_TEXT = 'the mill grinds tokens. ';

export interface FakeEngineOptions {
  modelId?: string;
  maxModelLen?: number;
  /** Delay per generated token (ms); 0 yields to the event loop only. */
  stepMs?: number;
  /** Delay before the first token (a long prefill), ms. */
  prefillMs?: number;
  maxRunning?: number;
  /** Waiting-queue bound: generate() throws server_overloaded beyond it. */
  maxWaiting?: number;
  usdPerHour?: number;
  observer?: EngineObserver;
  /** Emit EOS (finish 'stop') after this many tokens unless ignoreEos. */
  eosAfter?: number;
  /** Die (fatal cuda_error) once this many tokens were generated over all requests. */
  faultAfterTokens?: number;
  /** Greedy output cycles through this text (default GREEDY_TEXT), e.g. a recorded tool call. */
  greedyText?: string;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FakeEngine implements EngineClient {
  readonly modelId: string;
  readonly maxModelLen: number;
  fatalError: Error | null = null;
  readonly requests: EngineRequest[] = [];
  numRunning = 0;
  totalTokens = 0;
  numWaiting = 0;
  aborted: string[] = [];
  private draining = false;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly live = new Map<string, AbortController>();

  constructor(private readonly o: FakeEngineOptions = {}) {
    this.modelId = o.modelId ?? 'fake-model';
    this.maxModelLen = o.maxModelLen ?? 256;
  }

  stats(): EngineStats {
    return { numRunning: this.numRunning, numWaiting: this.numWaiting, kvCacheUsage: this.numRunning / 10, numFreeBlocks: 10 - this.numRunning, numTotalBlocks: 10 };
  }

  /** Kill the engine: in-flight generate() calls throw this error at their next step. */
  die(message = 'simulated CUDA fault'): void {
    this.fatalError = new TokenmillError('cuda_error', message);
  }

  generate(req: EngineRequest, signal?: AbortSignal): AsyncIterable<EngineOutput> {
    if (this.fatalError) throw this.fatalError;
    if (this.draining) throw new TokenmillError('server_draining', 'draining');
    const maxRunning = this.o.maxRunning ?? 64;
    if (this.numRunning >= maxRunning && this.o.maxWaiting !== undefined && this.numWaiting >= this.o.maxWaiting) {
      throw new TokenmillError('server_overloaded', 'queue full', { details: { retryAfterSeconds: 2 } });
    }
    this.requests.push(req);
    const ac = new AbortController();
    this.live.set(req.requestId, ac);
    signal?.addEventListener('abort', () => ac.abort(), { once: true });
    return this.run(req, ac.signal);
  }

  private async *run(req: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineOutput> {
    const arrival = Date.now();
    const maxRunning = this.o.maxRunning ?? 64;
    this.numWaiting++;
    while (this.numRunning >= maxRunning) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.numWaiting--;
    this.numRunning++;
    this.o.observer?.onRequestScheduled?.(req.requestId, (Date.now() - arrival) / 1000);
    this.o.observer?.onPrefixCacheQuery?.(req.promptTokenIds.length, 0);
    try {
      yield* this.steps(req, signal);
    } finally {
      this.numRunning--;
      this.live.delete(req.requestId);
      this.slotWaiters.shift()?.();
    }
  }

  private async *steps(req: EngineRequest, signal: AbortSignal): AsyncGenerator<EngineOutput> {
    const p = req.params;
    const n = p.n;
    const texts = Array.from({ length: n }, () => '');
    const counts = Array.from({ length: n }, () => 0);
    const emitted = Array.from({ length: n }, () => 0);
    const done = Array.from({ length: n }, () => false);
    const rngs = Array.from({ length: n }, (_, i) => mulberry32((p.seed ?? Math.floor(Math.random() * 2 ** 31)) + i * 7919));
    let generated = 0;
    let cost = 0;
    if (this.o.prefillMs) await sleep(this.o.prefillMs);
    const base = { requestId: req.requestId, numPromptTokens: req.promptTokenIds.length, numCachedPromptTokens: 0 };
    while (done.some((d) => !d)) {
      const t0 = Date.now();
      if (this.o.stepMs) await sleep(this.o.stepMs);
      else await new Promise((r) => setImmediate(r));
      if (this.fatalError) throw this.fatalError;
      if (signal.aborted) {
        this.aborted.push(req.requestId);
        for (let i = 0; i < n; i++) {
          if (done[i]) continue;
          done[i] = true;
          yield { ...base, index: i, newTokenIds: [], newText: '', logprobs: null, finished: true, finishReason: 'abort', numGeneratedTokens: generated, costUsd: cost };
        }
        return;
      }
      const stepTokens = n - done.filter(Boolean).length;
      const wall = Math.max(0.001, (Date.now() - t0) / 1000);
      const shares = apportionStepCost(this.o.usdPerHour ?? 1, wall, [{ requestId: req.requestId, numTokens: stepTokens }]);
      cost += shares.get(req.requestId) ?? 0;
      this.o.observer?.onStep?.({ wallSeconds: wall, numGeneratedTokens: stepTokens, numNewPromptTokens: generated === 0 ? req.promptTokenIds.length : 0 });
      for (let i = 0; i < n; i++) {
        if (done[i]) continue;
        const k = counts[i]!;
        const eos = !p.ignoreEos && this.o.eosAfter !== undefined && k >= this.o.eosAfter;
        const greedy = this.o.greedyText ?? GREEDY_TEXT;
        const ch = p.temperature === 0 ? greedy[k % greedy.length]! : 'abcdefghij klmnop'[Math.floor(rngs[i]!() * 17)]!;
        const tokenId = eos ? EOS : ch.charCodeAt(0);
        counts[i] = k + 1;
        generated++;
        this.totalTokens++;
        if (this.o.faultAfterTokens !== undefined && this.totalTokens >= this.o.faultAfterTokens) this.die();
        let finishReason: 'stop' | 'length' | null = eos ? 'stop' : null;
        // texts[i] holds everything generated; emitted[i] how much was released (stop strings are
        // held back while they might still complete, like the real detokenizer).
        texts[i] += eos ? '' : ch;
        const full = texts[i]!;
        const hit = p.stop.map((s) => full.indexOf(s)).filter((x) => x >= 0).sort((a, b) => a - b)[0];
        let releaseTo = full.length;
        if (hit !== undefined) {
          releaseTo = hit;
          finishReason = 'stop';
        } else {
          for (const s of p.stop) for (let l = Math.min(s.length - 1, full.length); l > 0; l--) if (full.endsWith(s.slice(0, l))) releaseTo = Math.min(releaseTo, full.length - l);
        }
        if (finishReason === null && counts[i]! >= p.maxTokens) { finishReason = 'length'; releaseTo = full.length; }
        const newText = full.slice(emitted[i]!, releaseTo);
        emitted[i] = Math.max(emitted[i]!, releaseTo);
        if (finishReason !== null) done[i] = true;
        const logprobs: TokenLogprob[] | null = p.logprobs === null ? null : [{
          tokenId, logprob: -0.25,
          top: Array.from({ length: p.logprobs }, (_, j) => ({ tokenId: j === 0 ? tokenId : 97 + j, logprob: -0.25 - j })),
        }];
        yield { ...base, index: i, newTokenIds: [tokenId], newText, logprobs, finished: finishReason !== null, finishReason, numGeneratedTokens: generated, costUsd: cost };
      }
    }
  }

  abort(requestId: string): void {
    this.live.get(requestId)?.abort();
  }

  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    while ((this.numRunning > 0 || this.numWaiting > 0) && Date.now() < deadline) await sleep(10);
    for (const ac of this.live.values()) ac.abort();
  }

  async shutdown(): Promise<void> {
    for (const ac of this.live.values()) ac.abort();
  }
}
