// Runs a route's engine request(s): collects them into one response, or streams them as SSE
// (role in the first delta, finish_reason on each choice's last chunk, the usage chunk, `: ping`
// while waiting, an error chunk then [DONE] on failure). Aborts the engine request when the client
// goes away, records server-side metrics (TTFT, ITL, e2e, tokens, cost) and reports fatal faults.

import type { FastifyReply } from 'fastify';
import type { EngineClient, EngineRequest } from '../engine/engine-api.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import { TokenmillError } from '../util/errors.js';
import type { ModelFrontend } from './frontend.js';
import { parsedChatChunks } from './chat-stream.js';
import {
  deltaChunk,
  fullResponse,
  usageChunk,
  type ChoiceState,
  type ResolvedLogprob,
  type ResponseHead,
  type UsageTotals,
} from './format.js';
import { envelope, toHttpError } from './http-errors.js';
import type { RouteKind } from './sampling.js';
import { startOutputs, type TaggedOutput } from './output-merge.js';
import { SseStream } from './sse.js';
import { checkFinishedChoice } from './structured-output.js';
import { emptyParsedOutput, foldDeltas, type OutputDelta } from './tools/output-parser.js';
import type { ChatOutputParser } from './tools/parser-select.js';
import { PhaseTimer } from './phase-timer.js';

/** Chat output parsing (tool calls, reasoning): one parser per choice. */
export interface ParsersSpec {
  create(): ChatOutputParser;
  /** A reasoning parser runs: report reasoning_content and reasoning_tokens. */
  readonly reasoning: boolean;
}

export interface RunContext {
  readonly engine: EngineClient;
  readonly frontend: ModelFrontend;
  readonly metrics: ServerMetrics;
  readonly pingIntervalMs: number;
  /** system_fingerprint of every completion body and chunk (ServerOptions.systemFingerprint). */
  readonly systemFingerprint: string | null;
  isDraining(): boolean;
  /** The engine's fatal error once it died (the server learns it from EngineClient.onFatal), else null. */
  fatal(): TokenmillError | null;
}

export interface RunSpec {
  readonly kind: RouteKind;
  readonly head: ResponseHead;
  /** One engine request per prompt (completions may send a list); choice i*n + j is prompt i's choice j. */
  readonly requests: readonly EngineRequest[];
  readonly includeUsage: boolean;
  readonly wantLogprobs: boolean;
  readonly arrivalMs: number;
  readonly account: string;
  /** Chat only: parse each choice's output (null: the text is the content). */
  readonly parsers?: ParsersSpec | null;
}

/** Per-request bookkeeping shared by both modes. */
class Tracker {
  readonly choices: ChoiceState[];
  /** Totals per engine request (each output carries its request's running totals). */
  private readonly subUsage: UsageTotals[];
  private readonly n: number;
  private lastTokenMs: number | null = null;
  private readonly phases: PhaseTimer;
  private readonly textCache = new Map<number, { token: string; bytes: readonly number[] }>();

  constructor(
    private readonly ctx: RunContext,
    private readonly spec: RunSpec,
  ) {
    this.n = spec.requests[0]!.params.n;
    const numChoices = this.n * spec.requests.length;
    const parsers = spec.parsers ?? null;
    this.choices = Array.from(
      { length: numChoices },
      (_, index): ChoiceState => ({
        index,
        text: '',
        numTokens: 0,
        logprobs: [],
        finishReason: null,
        started: false,
        ...(parsers !== null ? { parser: parsers.create(), parsed: emptyParsedOutput() } : {}),
      }),
    );
    this.subUsage = spec.requests.map(() => ({ numPromptTokens: 0, numCachedPromptTokens: 0, numGeneratedTokens: 0, costUsd: 0 }));
    this.phases = new PhaseTimer(
      ctx.metrics,
      spec.requests.map((r) => r.requestId),
      this.n,
    );
  }

  /** Usage summed over the engine requests. */
  get usage(): UsageTotals {
    const t: UsageTotals = { numPromptTokens: 0, numCachedPromptTokens: 0, numGeneratedTokens: 0, costUsd: 0 };
    for (const u of this.subUsage) {
      t.numPromptTokens += u.numPromptTokens;
      t.numCachedPromptTokens += u.numCachedPromptTokens;
      t.numGeneratedTokens += u.numGeneratedTokens;
      t.costUsd += u.costUsd;
    }
    if (this.spec.parsers?.reasoning) t.numReasoningTokens = this.choices.reduce((a, c) => a + (c.parser?.numReasoningTokens ?? 0), 0);
    return t;
  }

  /** Fold one output in; returns its resolved logprobs (null when off) and the text offset before it. */
  async add({
    sub,
    out,
  }: TaggedOutput): Promise<{ choice: ChoiceState; logprobs: ResolvedLogprob[] | null; textOffset: number; deltas: OutputDelta[] }> {
    const now = Date.now();
    if (out.newTokenIds.length > 0) {
      if (this.lastTokenMs === null) this.ctx.metrics.observeFirstToken((now - this.spec.arrivalMs) / 1000);
      else this.ctx.metrics.observeInterToken((now - this.lastTokenMs) / 1000, out.newTokenIds.length);
      this.lastTokenMs = now;
      this.phases.onTokens(sub, out.newTokenIds.length, now);
    }
    const u = this.subUsage[sub]!;
    u.numPromptTokens = out.numPromptTokens;
    u.numCachedPromptTokens = out.numCachedPromptTokens;
    u.numGeneratedTokens = Math.max(u.numGeneratedTokens, out.numGeneratedTokens);
    u.costUsd = Math.max(u.costUsd, out.costUsd);
    const choice = out.index < this.n ? this.choices[sub * this.n + out.index] : undefined;
    if (!choice) throw new TokenmillError('internal_error', `engine returned choice index ${out.index} for n=${this.n}`);
    const textOffset = choice.text.length;
    choice.text += out.newText;
    choice.numTokens += out.newTokenIds.length;
    if (out.finished) choice.finishReason = out.finishReason ?? 'stop';
    const deltas: OutputDelta[] = [];
    if (choice.parser) {
      deltas.push(...choice.parser.push(out.newText, out.newTokenIds));
      if (out.finished) deltas.push(...choice.parser.finish());
      foldDeltas(choice.parsed!, deltas);
    }
    // Validated before the choice's last chunk (or the response) is sent; throws structured_output_invalid.
    if (out.finished)
      checkFinishedChoice(this.spec.requests[sub]!.params.constraint, choice.parsed?.content ?? choice.text, choice.finishReason);
    let logprobs: ResolvedLogprob[] | null = null;
    if (this.spec.wantLogprobs) {
      logprobs = [];
      for (const lp of out.logprobs ?? []) {
        const top: { token: string; bytes: readonly number[]; logprob: number }[] = [];
        for (const t of lp.top) top.push({ ...(await this.text(t.tokenId)), logprob: t.logprob });
        logprobs.push({ ...(await this.text(lp.tokenId)), logprob: lp.logprob, top });
      }
      choice.logprobs.push(...logprobs);
    }
    return { choice, logprobs, textOffset, deltas };
  }

  private async text(id: number): Promise<{ token: string; bytes: readonly number[] }> {
    let s = this.textCache.get(id);
    if (s === undefined) {
      s = { token: await this.ctx.frontend.tokenText(id), bytes: await this.ctx.frontend.tokenBytes(id) };
      this.textCache.set(id, s);
    }
    return s;
  }

  /** Throw if a choice ended by abort/error (drain timeout, engine fault). */
  checkOutcome(): void {
    for (const c of this.choices) {
      if (c.finishReason === 'abort') {
        throw this.ctx.isDraining()
          ? new TokenmillError('server_draining', 'The server shut down before this request finished.', {
              details: { retryAfterSeconds: 5 },
            })
          : new TokenmillError('request_aborted', 'The request was aborted.');
      }
      if (c.finishReason === 'error') throw this.ctx.fatal() ?? new TokenmillError('internal_error', 'The engine failed this request.');
    }
  }

  /**
   * A request that failed after it ran (drain timeout, engine fault) still used engine steps: charge
   * them to its key, so the per-key totals keep adding up to the busy total.
   */
  chargeFailed(): void {
    this.phases.forget();
    const u = this.usage;
    if (u.costUsd > 0)
      this.ctx.metrics.chargeKey(this.spec.account, {
        promptTokens: u.numPromptTokens,
        completionTokens: u.numGeneratedTokens,
        costUsd: u.costUsd,
      });
  }

  /** Count the request as finished; a client that went away counts as finished_reason="abort". */
  finish(clientGone = false): void {
    this.phases.finish();
    const u = this.usage;
    this.ctx.metrics.observeFinished({
      account: this.spec.account,
      e2eSeconds: (Date.now() - this.spec.arrivalMs) / 1000,
      promptTokens: u.numPromptTokens,
      completionTokens: u.numGeneratedTokens,
      costUsd: u.costUsd,
      finishReasons: this.choices.map((c) => (clientGone ? 'abort' : (c.finishReason ?? 'stop'))),
    });
  }
}

export function engineDead(e: Error): TokenmillError {
  if (e instanceof TokenmillError && e.fatal) return e;
  return new TokenmillError('engine_dead', `The engine hit a fatal fault: ${e.message}`, { cause: e });
}

/** A new request on a dead engine: 500 engine_dead naming the fault (in-flight ones got the fault itself). */
export function refuseIfDead(ctx: RunContext): void {
  const dead = ctx.fatal();
  if (dead !== null) throw new TokenmillError('engine_dead', `The engine is dead: ${dead.message}`, { cause: dead });
}

/** A generation request's start: its arrival time and the serving parts, refused on a dead engine. */
export function beginRequest(ctx: RunContext): { arrivalMs: number; engine: RunContext['engine']; frontend: RunContext['frontend'] } {
  const arrivalMs = Date.now();
  refuseIfDead(ctx);
  return { arrivalMs, engine: ctx.engine, frontend: ctx.frontend };
}

/** Classify a generate() failure: once the engine is dead, its fault. */
export function failure(ctx: RunContext, e: unknown): TokenmillError {
  let te = toHttpError(e);
  const dead = ctx.fatal();
  if (te.fatal || dead !== null) te = dead ?? engineDead(te);
  if (te.code !== 'request_aborted') ctx.metrics.observeError(te.code);
  return te;
}

/**
 * The engine-side abort signal: fired when the client disconnects before we finished answering
 * (then clientGone is true), or by us to stop sibling requests after a failure.
 */
export function abortOnClose(reply: FastifyReply): { ac: AbortController; clientGone: () => boolean } {
  const ac = new AbortController();
  let gone = false;
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) {
      gone = true;
      ac.abort();
    }
  });
  return { ac, clientGone: () => gone };
}

export async function runNonStream(ctx: RunContext, spec: RunSpec, reply: FastifyReply): Promise<unknown> {
  const { ac, clientGone } = abortOnClose(reply);
  const tracker = new Tracker(ctx, spec);
  try {
    const it = startOutputs(ctx.engine, spec.requests, ac.signal);
    for (let r = await it.next(); !r.done; r = await it.next()) await tracker.add(r.value);
    if (clientGone()) {
      tracker.finish(true);
      throw new TokenmillError('request_aborted', 'The client disconnected.');
    }
    tracker.checkOutcome();
  } catch (e) {
    ac.abort(); // stop sibling requests of a failed one
    if (!clientGone()) tracker.chargeFailed();
    throw failure(ctx, e);
  }
  tracker.finish();
  const usage = tracker.usage;
  reply.header('x-tokenmill-cost-usd', usage.costUsd.toFixed(9));
  return fullResponse(spec.kind, spec.head, tracker.choices, usage, spec.wantLogprobs, spec.parsers?.reasoning ?? false);
}

type Next = IteratorResult<TaggedOutput>;

/**
 * Stream the request. Errors before anything was sent become ordinary HTTP errors (thrown); once
 * the SSE stream is open they become an error chunk followed by [DONE].
 */
export async function runStream(ctx: RunContext, spec: RunSpec, reply: FastifyReply): Promise<void> {
  const { ac, clientGone } = abortOnClose(reply);
  const tracker = new Tracker(ctx, spec);
  const sse = new SseStream(reply);
  let it: AsyncIterator<TaggedOutput> | null = null;
  try {
    it = startOutputs(ctx.engine, spec.requests, ac.signal);
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
      const out = r.value.out;
      const { choice, logprobs, textOffset, deltas } = await tracker.add(r.value);
      if (clientGone()) break;
      if (out.finishReason === 'abort' || out.finishReason === 'error') continue;
      if (choice.parser) {
        const chunks = parsedChatChunks(spec.head, choice, deltas, {
          logprobs: spec.wantLogprobs ? logprobs : null,
          finished: out.finished,
          includeUsage: spec.includeUsage,
        });
        if (chunks.length > 0) sse.open();
        for (const c of chunks) sse.data(c);
        if (chunks.length > 0) choice.started = true;
        continue;
      }
      const hasLogprobs = logprobs !== null && logprobs.length > 0;
      if (!choice.started || out.newText.length > 0 || out.finished || hasLogprobs) {
        sse.open();
        sse.data(
          deltaChunk(
            spec.kind,
            spec.head,
            {
              index: choice.index,
              first: !choice.started,
              text: out.newText,
              logprobs: spec.wantLogprobs ? logprobs : null,
              textOffset,
              finish: out.finished ? choice.finishReason : null,
            },
            spec.includeUsage,
          ),
        );
        choice.started = true;
      }
    }
    if (clientGone()) {
      tracker.finish(true);
      return;
    }
    tracker.checkOutcome();
    tracker.finish();
    sse.open();
    if (spec.includeUsage) sse.data(usageChunk(spec.kind, spec.head, tracker.usage));
    sse.done();
  } catch (e) {
    ac.abort(); // stop sibling requests of a failed one
    if (!clientGone()) tracker.chargeFailed();
    const te = failure(ctx, e);
    if (!sse.isOpen) throw te;
    sse.data(envelope(te));
    sse.done();
  } finally {
    if (ac.signal.aborted) void it?.return?.(undefined)?.catch(() => undefined);
  }
}

export function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
