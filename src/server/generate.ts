// Runs one engine request for a route: collects it into one response, or streams it as SSE
// (role in the first delta, finish_reason on each choice's last chunk, the usage chunk, `: ping`
// while waiting, an error chunk then [DONE] on failure). Aborts the engine request when the client
// goes away, records server-side metrics (TTFT, ITL, e2e, tokens, cost) and reports fatal faults.

import type { FastifyReply } from 'fastify';
import type { EngineClient, EngineOutput, EngineRequest } from '../engine/engine-api.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { TokenmillError } from '../util/errors.js';
import type { ModelFrontend } from './frontend.js';
import { deltaChunk, fullResponse, usageChunk, type ChoiceState, type ResolvedLogprob, type ResponseHead, type UsageTotals } from './format.js';
import { envelope, toHttpError } from './http-errors.js';
import type { RouteKind } from './sampling.js';
import { SseStream } from './sse.js';

export interface RunContext {
  readonly engine: EngineClient;
  readonly frontend: ModelFrontend;
  readonly metrics: ServerMetrics;
  readonly pingIntervalMs: number;
  isDraining(): boolean;
  /** Called with a fatal error (engine dead): the server turns unhealthy and exits. */
  reportFatal(e: TokenmillError): void;
}

export interface RunSpec {
  readonly kind: RouteKind;
  readonly head: ResponseHead;
  readonly request: EngineRequest;
  readonly includeUsage: boolean;
  readonly wantLogprobs: boolean;
  readonly arrivalMs: number;
  readonly account: string;
}

/** Per-request bookkeeping shared by both modes. */
class Tracker {
  readonly choices: ChoiceState[];
  readonly usage: UsageTotals = { numPromptTokens: 0, numCachedPromptTokens: 0, numGeneratedTokens: 0, costUsd: 0 };
  private lastTokenMs: number | null = null;
  private readonly textCache = new Map<number, string>();

  constructor(private readonly ctx: RunContext, private readonly spec: RunSpec) {
    this.choices = Array.from({ length: spec.request.params.n }, (_, index) => ({ index, text: '', numTokens: 0, logprobs: [], finishReason: null, started: false }));
  }

  /** Fold one output in; returns its resolved logprobs (null when off) and the text offset before it. */
  async add(out: EngineOutput): Promise<{ choice: ChoiceState; logprobs: ResolvedLogprob[] | null; textOffset: number }> {
    const now = Date.now();
    if (out.newTokenIds.length > 0) {
      if (this.lastTokenMs === null) this.ctx.metrics.observeFirstToken((now - this.spec.arrivalMs) / 1000);
      else this.ctx.metrics.observeInterToken((now - this.lastTokenMs) / 1000, out.newTokenIds.length);
      this.lastTokenMs = now;
    }
    const u = this.usage;
    u.numPromptTokens = out.numPromptTokens;
    u.numCachedPromptTokens = out.numCachedPromptTokens;
    u.numGeneratedTokens = Math.max(u.numGeneratedTokens, out.numGeneratedTokens);
    u.costUsd = Math.max(u.costUsd, out.costUsd);
    const choice = this.choices[out.index];
    if (!choice) throw new TokenmillError('internal_error', `engine returned choice index ${out.index} for n=${this.choices.length}`);
    const textOffset = choice.text.length;
    choice.text += out.newText;
    choice.numTokens += out.newTokenIds.length;
    if (out.finished) choice.finishReason = out.finishReason ?? 'stop';
    let logprobs: ResolvedLogprob[] | null = null;
    if (this.spec.wantLogprobs) {
      logprobs = [];
      for (const lp of out.logprobs ?? []) {
        const top: { token: string; logprob: number }[] = [];
        for (const t of lp.top) top.push({ token: await this.text(t.tokenId), logprob: t.logprob });
        logprobs.push({ token: await this.text(lp.tokenId), logprob: lp.logprob, top });
      }
      choice.logprobs.push(...logprobs);
    }
    return { choice, logprobs, textOffset };
  }

  private async text(id: number): Promise<string> {
    let s = this.textCache.get(id);
    if (s === undefined) {
      s = await this.ctx.frontend.tokenText(id);
      this.textCache.set(id, s);
    }
    return s;
  }

  /** Throw if a choice ended by abort/error (drain timeout, engine fault). */
  checkOutcome(): void {
    for (const c of this.choices) {
      if (c.finishReason === 'abort') {
        throw this.ctx.isDraining()
          ? new TokenmillError('server_draining', 'The server shut down before this request finished.', { details: { retryAfterSeconds: 5 } })
          : new TokenmillError('request_aborted', 'The request was aborted.');
      }
      if (c.finishReason === 'error') throw this.ctx.engine.fatalError ? engineDead(this.ctx.engine.fatalError) : new TokenmillError('internal_error', 'The engine failed this request.');
    }
  }

  /** Count the request as finished; a client that went away counts as finished_reason="abort". */
  finish(clientGone = false): void {
    this.ctx.metrics.observeFinished({
      account: this.spec.account,
      e2eSeconds: (Date.now() - this.spec.arrivalMs) / 1000,
      promptTokens: this.usage.numPromptTokens,
      completionTokens: this.usage.numGeneratedTokens,
      costUsd: this.usage.costUsd,
      finishReasons: this.choices.map((c) => (clientGone ? 'abort' : (c.finishReason ?? 'stop'))),
    });
  }
}

function engineDead(e: Error): TokenmillError {
  if (e instanceof TokenmillError && e.fatal) return e;
  return new TokenmillError('engine_dead', `The engine hit a fatal fault: ${e.message}`, { cause: e });
}

/** Classify a generate() failure; fatal ones are reported to the server. */
function failure(ctx: RunContext, e: unknown): TokenmillError {
  let te = toHttpError(e);
  if (te.fatal || ctx.engine.fatalError) {
    te = engineDead(ctx.engine.fatalError ?? te);
    ctx.reportFatal(te);
  }
  if (te.code !== 'request_aborted') ctx.metrics.observeError(te.code);
  return te;
}

/** Abort the engine request when the client disconnects before we finished answering. */
function abortOnClose(reply: FastifyReply): AbortController {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac;
}

export async function runNonStream(ctx: RunContext, spec: RunSpec, reply: FastifyReply): Promise<unknown> {
  const ac = abortOnClose(reply);
  const tracker = new Tracker(ctx, spec);
  try {
    for await (const out of ctx.engine.generate(spec.request, ac.signal)) await tracker.add(out);
    if (ac.signal.aborted) {
      tracker.finish(true);
      throw new TokenmillError('request_aborted', 'The client disconnected.');
    }
    tracker.checkOutcome();
  } catch (e) {
    throw failure(ctx, e);
  }
  tracker.finish();
  reply.header('x-tokenmill-cost-usd', tracker.usage.costUsd.toFixed(9));
  return fullResponse(spec.kind, spec.head, tracker.choices, tracker.usage, spec.wantLogprobs);
}

type Next = IteratorResult<EngineOutput>;

/**
 * Stream the request. Errors before anything was sent become ordinary HTTP errors (thrown); once
 * the SSE stream is open they become an error chunk followed by [DONE].
 */
export async function runStream(ctx: RunContext, spec: RunSpec, reply: FastifyReply): Promise<void> {
  const ac = abortOnClose(reply);
  const tracker = new Tracker(ctx, spec);
  const sse = new SseStream(reply);
  let it: AsyncIterator<EngineOutput> | null = null;
  try {
    it = ctx.engine.generate(spec.request, ac.signal)[Symbol.asyncIterator]();
    let next: Promise<Next> = it.next();
    for (;;) {
      const r = await raceTimeout(next, ctx.pingIntervalMs);
      if (r === 'timeout') {
        sse.open();
        sse.comment('ping');
        continue;
      }
      if (r.done) break;
      next = it.next();
      next.catch(() => undefined); // observed on the next loop turn; never an unhandled rejection
      const out = r.value;
      const { choice, logprobs, textOffset } = await tracker.add(out);
      if (ac.signal.aborted) break;
      if (out.finishReason === 'abort' || out.finishReason === 'error') continue;
      const hasLogprobs = logprobs !== null && logprobs.length > 0;
      if (!choice.started || out.newText.length > 0 || out.finished || hasLogprobs) {
        sse.open();
        sse.data(deltaChunk(spec.kind, spec.head, {
          index: out.index, first: !choice.started, text: out.newText, logprobs: spec.wantLogprobs ? logprobs : null,
          textOffset, finish: out.finished ? choice.finishReason : null,
        }, spec.includeUsage));
        choice.started = true;
      }
    }
    if (ac.signal.aborted) {
      tracker.finish(true);
      return;
    }
    tracker.checkOutcome();
    tracker.finish();
    sse.open();
    if (spec.includeUsage) sse.data(usageChunk(spec.kind, spec.head, tracker.usage));
    sse.done();
  } catch (e) {
    const te = failure(ctx, e);
    if (!sse.isOpen) throw te;
    sse.data(envelope(te));
    sse.done();
  } finally {
    if (ac.signal.aborted) void it?.return?.(undefined)?.catch(() => undefined);
  }
}

function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}


